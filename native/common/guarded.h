// The C ABI of AttnPortal's native libraries returns a status instead of throwing across it (a C++ exception must not
// reach .NET): 0 on success, 1 with the message on stderr, prefixed by the library's name.
#pragma once
#include <cstdio>
#include <exception>
#include <utility>

namespace attnportal {

template <typename F>
int guarded(const char* library, const char* what, F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s %s: %s\n", library, what, e.what());
    return 1;
  }
}

}  // namespace attnportal
