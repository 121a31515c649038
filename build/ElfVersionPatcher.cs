// Marks one symbol-version requirement of an ELF shared library as weak, so that
// the dynamic loader accepts a system library that lacks that version.
//
// Why this exists: TorchSharp 0.107's libLibTorchSharp.so was built with GCC 15
// and records a need for GLIBCXX_3.4.32, yet the only symbol it has at that
// version is std::ios_base_library_init, which GCC 13+ <iostream> references
// solely to demand a libstdc++ that initialises std::cout and friends itself.
// No relocation refers to it, the library uses none of the standard stream
// objects, and its dependency libc10 (GCC 9) initialises them anyway. Older
// distributions (Debian 12 ships GLIBCXX_3.4.30) nevertheless refuse to dlopen
// it. A weak version need (VER_FLG_WEAK) tells ld.so to check the version where
// it exists and carry on where it does not.
//
// This one file is compiled twice: by MSBuild's RoslynCodeTaskFactory (see
// Directory.Build.targets), which builds against netstandard 2.0 reference
// assemblies with no preprocessor symbols, and by ordinary SDK projects such as
// the test project. Hence: BCL-only, netstandard 2.0 APIs only (no Span, no
// BinaryPrimitives, no File.Move overwrite), and the MSBuild task class at the
// bottom is guarded so that SDK projects, which always define one of
// NETCOREAPP / NETFRAMEWORK / NETSTANDARD, never see it.

#nullable enable

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;

namespace AttnPortal.Build
{
    public enum PatchOutcome
    {
        /// <summary>The library records no need for the version; nothing to do.</summary>
        NotNeeded,

        /// <summary>Every need for the version is already weak; the file was not touched.</summary>
        AlreadyWeak,

        /// <summary>The weak flag was set and the file replaced.</summary>
        Patched,
    }

    /// <summary>One Vernaux entry of SHT_GNU_verneed: a version required from a DT_NEEDED library.</summary>
    public sealed class ElfVersionNeed
    {
        public ElfVersionNeed(string fileName, string versionName, ushort flags, ushort versionIndex, long flagsOffset)
        {
            FileName = fileName;
            VersionName = versionName;
            Flags = flags;
            VersionIndex = versionIndex;
            FlagsOffset = flagsOffset;
        }

        /// <summary>The needed library (vn_file), e.g. libstdc++.so.6.</summary>
        public string FileName { get; private set; }

        /// <summary>The version name (vna_name), e.g. GLIBCXX_3.4.32.</summary>
        public string VersionName { get; private set; }

        public ushort Flags { get; private set; }

        /// <summary>vna_other: the index that .gnu.version entries use to refer to this need.</summary>
        public ushort VersionIndex { get; private set; }

        /// <summary>File offset of the two-byte vna_flags field.</summary>
        public long FlagsOffset { get; private set; }

        public bool IsWeak { get { return (Flags & ElfVersionPatcher.VerFlagWeak) != 0; } }

        public override string ToString()
        {
            return FileName + ":" + VersionName + " flags=0x" + Flags.ToString("x");
        }
    }

    public static class ElfVersionPatcher
    {
        /// <summary>VER_FLG_WEAK from elf.h.</summary>
        public const ushort VerFlagWeak = 0x2;

        public const ushort MachineX86_64 = 62;
        public const ushort MachineAArch64 = 183;

        /// <summary>The version whose need TorchSharp 0.107 records but never binds.</summary>
        public const string LibTorchSharpMissingVersion = "GLIBCXX_3.4.32";

        public static IList<ElfVersionNeed> ReadVersionNeeds(string elfPath)
        {
            return ElfImage.Load(elfPath).ReadVersionNeeds();
        }

        public static IList<string> ReadVersionDefinitions(string elfPath)
        {
            return ElfImage.Load(elfPath).ReadVersionDefinitions();
        }

        /// <summary>Whether the library's .gnu.version_d defines <paramref name="version"/>, i.e. can satisfy a need for it.</summary>
        public static bool HasVersionDefinition(string elfPath, string version)
        {
            if (version == null) throw new ArgumentNullException("version");
            foreach (string defined in ReadVersionDefinitions(elfPath))
            {
                if (string.Equals(defined, version, StringComparison.Ordinal)) return true;
            }
            return false;
        }

        /// <summary>
        /// Sets VER_FLG_WEAK on every Vernaux entry named <paramref name="version"/>.
        /// Only that two-byte field changes; the symbol's .gnu.version entry is left alone
        /// because with no relocation against the symbol the loader never looks it up.
        /// </summary>
        /// <exception cref="InvalidDataException">The file is not a well-formed ELF64 little-endian x86-64/AArch64 object; it is left unchanged.</exception>
        public static PatchOutcome MarkVersionNeedWeak(string elfPath, string version)
        {
            if (elfPath == null) throw new ArgumentNullException("elfPath");
            if (string.IsNullOrEmpty(version)) throw new ArgumentException("A version name is required.", "version");

            ElfImage image = ElfImage.Load(elfPath);
            List<ElfVersionNeed> toPatch = new List<ElfVersionNeed>();
            bool needed = false;
            foreach (ElfVersionNeed need in image.ReadVersionNeeds())
            {
                if (!string.Equals(need.VersionName, version, StringComparison.Ordinal)) continue;
                needed = true;
                if (!need.IsWeak) toPatch.Add(need);
            }

            if (!needed) return PatchOutcome.NotNeeded;
            if (toPatch.Count == 0) return PatchOutcome.AlreadyWeak;

            ReplaceWithPatchedCopy(elfPath, image.Length, toPatch);
            return PatchOutcome.Patched;
        }

        // The output copy may be a hard link or symlink to the NuGet cache
        // (CreateHardLinksForCopyLocalIfPossible / CreateSymbolicLinksForCopyLocalIfPossible),
        // and a loader in another process may have it mapped. Writing in place would
        // corrupt the shared cache file or the mapping, so we write a sibling and
        // rename it over the path, which only ever replaces the directory entry.
        private static void ReplaceWithPatchedCopy(string elfPath, long expectedLength, List<ElfVersionNeed> toPatch)
        {
            string fullPath = Path.GetFullPath(elfPath);
            string directory = Path.GetDirectoryName(fullPath) ?? ".";
            string tempPath = Path.Combine(directory, "." + Path.GetFileName(fullPath) + "." + Guid.NewGuid().ToString("N") + ".tmp");

            // Keeping the copy's timestamp equal to the original's matters for incremental
            // builds: MSBuild's Copy (SkipUnchangedFiles) compares size and timestamp with the
            // NuGet cache file, and the patch changes neither, so the next build leaves the
            // patched file alone instead of re-copying the unpatched one every time.
            DateTime lastWriteUtc = File.GetLastWriteTimeUtc(fullPath);
            try
            {
                // File.Copy keeps the Unix permission bits, which netstandard 2.0 cannot set directly.
                File.Copy(fullPath, tempPath, false);
                using (FileStream stream = new FileStream(tempPath, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
                {
                    if (stream.Length != expectedLength)
                    {
                        throw new IOException(fullPath + " changed while it was being patched (length " + stream.Length + ", expected " + expectedLength + ").");
                    }

                    byte[] field = new byte[2];
                    foreach (ElfVersionNeed need in toPatch)
                    {
                        stream.Position = need.FlagsOffset;
                        if (stream.Read(field, 0, 2) != 2 || (ushort)(field[0] | (field[1] << 8)) != need.Flags)
                        {
                            throw new IOException(fullPath + " changed while it was being patched (vna_flags at 0x" + need.FlagsOffset.ToString("x") + ").");
                        }

                        ushort flags = (ushort)(need.Flags | VerFlagWeak);
                        field[0] = (byte)flags;
                        field[1] = (byte)(flags >> 8);
                        stream.Position = need.FlagsOffset;
                        stream.Write(field, 0, 2);
                    }
                    stream.Flush(true);
                }

                File.SetLastWriteTimeUtc(tempPath, lastWriteUtc);
                // On Unix File.Replace without a backup is rename(2): atomic, and readers see either the old or the new file.
                File.Replace(tempPath, fullPath, null);
            }
            finally
            {
                if (File.Exists(tempPath)) File.Delete(tempPath);
            }
        }

        /// <summary>
        /// The libstdc++.so.6 that the dynamic loader would pick for this machine's architecture,
        /// or null when none is found (or not on Linux).
        /// </summary>
        public static string? FindSystemLibStdCxx()
        {
            if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return null;

            ushort machine;
            string[] standardDirectories;
            switch (RuntimeInformation.OSArchitecture)
            {
                case Architecture.X64:
                    machine = MachineX86_64;
                    standardDirectories = new[] { "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib" };
                    break;
                case Architecture.Arm64:
                    machine = MachineAArch64;
                    standardDirectories = new[] { "/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib" };
                    break;
                default:
                    return null;
            }

            // The loader's cache comes first because it is what ld.so actually consults;
            // the fixed directories cover containers where ldconfig is missing or its cache is empty.
            List<string> candidates = LibStdCxxFromLdconfig();
            foreach (string dir in standardDirectories) candidates.Add(Path.Combine(dir, "libstdc++.so.6"));

            foreach (string candidate in candidates)
            {
                if (!File.Exists(candidate)) continue;
                // ldconfig -p also lists 32-bit and foreign-architecture copies; only one loadable by this process counts.
                if (ElfImage.TryReadMachine(candidate) == machine) return candidate;
            }
            return null;
        }

        /// <summary>
        /// Whether the system libstdc++ defines <paramref name="version"/>. False (with a null path)
        /// when no system libstdc++ can be found, since then nothing can be assumed about it.
        /// </summary>
        public static bool SystemLibStdCxxDefines(string version, out string? libraryPath)
        {
            libraryPath = FindSystemLibStdCxx();
            return libraryPath != null && HasVersionDefinition(libraryPath, version);
        }

        private static List<string> LibStdCxxFromLdconfig()
        {
            List<string> result = new List<string>();
            foreach (string ldconfig in new[] { "/sbin/ldconfig", "/usr/sbin/ldconfig", "/usr/bin/ldconfig" })
            {
                if (!File.Exists(ldconfig)) continue;
                try
                {
                    ProcessStartInfo start = new ProcessStartInfo(ldconfig, "-p")
                    {
                        RedirectStandardOutput = true,
                        RedirectStandardError = true,
                        UseShellExecute = false,
                        CreateNoWindow = true,
                    };
                    using (Process? process = Process.Start(start))
                    {
                        if (process == null) continue;
                        process.ErrorDataReceived += delegate { };
                        process.BeginErrorReadLine();
                        string output = process.StandardOutput.ReadToEnd();
                        if (!process.WaitForExit(10000))
                        {
                            try { process.Kill(); } catch (InvalidOperationException) { }
                            continue;
                        }

                        // Lines look like: "\tlibstdc++.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libstdc++.so.6"
                        foreach (string rawLine in output.Split('\n'))
                        {
                            string line = rawLine.Trim();
                            if (!line.StartsWith("libstdc++.so.6 ", StringComparison.Ordinal)) continue;
                            int arrow = line.IndexOf("=> ", StringComparison.Ordinal);
                            if (arrow >= 0) result.Add(line.Substring(arrow + 3).Trim());
                        }
                    }
                    return result;
                }
                catch (System.ComponentModel.Win32Exception)
                {
                    // Not executable here (e.g. a restricted container); try the next one, then the fixed paths.
                }
            }
            return result;
        }

        /// <summary>A validated, fully read ELF64 little-endian image with bounds-checked accessors.</summary>
        private sealed class ElfImage
        {
            private const uint ShtStrtab = 3;
            private const uint ShtDynamic = 6;
            private const uint ShtGnuVerdef = 0x6ffffffd;
            private const uint ShtGnuVerneed = 0x6ffffffe;
            private const uint PtLoad = 1;
            private const uint PtDynamic = 2;
            private const long DtNull = 0;
            private const long DtStrtab = 5;
            private const long DtStrsz = 10;
            private const long DtVerdef = 0x6ffffffc;
            private const long DtVerdefnum = 0x6ffffffd;
            private const long DtVerneed = 0x6ffffffe;
            private const long DtVerneednum = 0x6fffffff;
            private const int EhdrSize = 64;
            private const int PhdrSize = 56;
            private const int ShdrSize = 64;
            private const int VerneedSize = 16;
            private const int VernauxSize = 16;
            private const int VerdefSize = 20;
            private const int VerdauxSize = 8;

            private readonly string _path;
            private readonly byte[] _data;
            private readonly List<Section> _sections = new List<Section>();
            private readonly List<Segment> _segments = new List<Segment>();

            private ElfImage(string path, byte[] data)
            {
                _path = path;
                _data = data;
            }

            public long Length { get { return _data.LongLength; } }

            public static ElfImage Load(string path)
            {
                if (path == null) throw new ArgumentNullException("path");
                ElfImage image = new ElfImage(path, File.ReadAllBytes(path));
                image.ParseHeaders();
                return image;
            }

            /// <summary>e_machine of an ELF64 little-endian file, or 0 if it is anything else.</summary>
            public static ushort TryReadMachine(string path)
            {
                try
                {
                    byte[] header = new byte[20];
                    using (FileStream stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
                    {
                        int read = 0;
                        while (read < header.Length)
                        {
                            int n = stream.Read(header, read, header.Length - read);
                            if (n == 0) return 0;
                            read += n;
                        }
                    }
                    if (header[0] != 0x7f || header[1] != (byte)'E' || header[2] != (byte)'L' || header[3] != (byte)'F') return 0;
                    if (header[4] != 2 || header[5] != 1) return 0;
                    return (ushort)(header[18] | (header[19] << 8));
                }
                catch (IOException) { return 0; }
                catch (UnauthorizedAccessException) { return 0; }
            }

            private void ParseHeaders()
            {
                if (_data.Length < 4 || _data[0] != 0x7f || _data[1] != (byte)'E' || _data[2] != (byte)'L' || _data[3] != (byte)'F')
                {
                    throw Malformed("not an ELF file (missing the \\x7fELF magic)");
                }
                if (_data.Length < EhdrSize)
                {
                    throw Malformed("truncated ELF header (" + _data.Length + " bytes, need " + EhdrSize + ")");
                }
                if (_data[4] != 2) throw Malformed("not ELF64 (EI_CLASS=" + _data[4] + "); only 64-bit libraries are supported");
                if (_data[5] != 1) throw Malformed("not little-endian (EI_DATA=" + _data[5] + ")");
                if (_data[6] != 1) throw Malformed("unknown ELF version " + _data[6]);

                ushort machine = U16(18);
                if (machine != MachineX86_64 && machine != MachineAArch64)
                {
                    throw Malformed("unsupported e_machine " + machine + " (expected x86-64 = 62 or AArch64 = 183)");
                }

                ulong phoff = U64(32);
                ulong shoff = U64(40);
                ushort phentsize = U16(54);
                ushort phnum = U16(56);
                ushort shentsize = U16(58);
                ulong shnum = U16(60);

                if (phnum != 0)
                {
                    if (phentsize != PhdrSize) throw Malformed("unexpected e_phentsize " + phentsize + " (ELF64 uses " + PhdrSize + ")");
                    CheckRange(phoff, (ulong)phnum * PhdrSize, "program header table");
                    for (int i = 0; i < phnum; i++)
                    {
                        long at = (long)phoff + (long)i * PhdrSize;
                        _segments.Add(new Segment(U32(at), U64(at + 8), U64(at + 16), U64(at + 32)));
                    }
                }

                if (shoff != 0)
                {
                    if (shentsize != ShdrSize) throw Malformed("unexpected e_shentsize " + shentsize + " (ELF64 uses " + ShdrSize + ")");
                    CheckRange(shoff, ShdrSize, "section header table");
                    // With 0xff00 or more sections the real count lives in section 0's sh_size.
                    if (shnum == 0) shnum = U64((long)shoff + 32);
                    CheckRange(shoff, shnum * ShdrSize, "section header table (" + shnum + " entries)");
                    for (ulong i = 0; i < shnum; i++)
                    {
                        long at = (long)shoff + (long)i * ShdrSize;
                        _sections.Add(new Section(U32(at + 4), U64(at + 24), U64(at + 32), U32(at + 40), U32(at + 44)));
                    }
                }
            }

            public List<ElfVersionNeed> ReadVersionNeeds()
            {
                List<ElfVersionNeed> needs = new List<ElfVersionNeed>();
                Table table;
                if (!TryFindTable(ShtGnuVerneed, DtVerneed, DtVerneednum, "version need (.gnu.version_r)", out table)) return needs;

                long entry = table.Offset;
                for (ulong i = 0; i < table.Count; i++)
                {
                    CheckInTable(table, entry, VerneedSize, "Verneed entry " + i);
                    ushort vnVersion = U16(entry);
                    if (vnVersion != 1) throw Malformed("Verneed entry " + i + " has unsupported vn_version " + vnVersion);
                    ushort count = U16(entry + 2);
                    string fileName = table.Strings.Read(this, U32(entry + 4));
                    uint auxOffset = U32(entry + 8);
                    uint next = U32(entry + 12);

                    long aux = entry + auxOffset;
                    for (int j = 0; j < count; j++)
                    {
                        CheckInTable(table, aux, VernauxSize, "Vernaux entry " + j + " of " + fileName);
                        ushort flags = U16(aux + 4);
                        ushort other = U16(aux + 6);
                        string name = table.Strings.Read(this, U32(aux + 8));
                        needs.Add(new ElfVersionNeed(fileName, name, flags, other, aux + 4));
                        uint auxNext = U32(aux + 12);
                        if (auxNext == 0 && j + 1 < count) throw Malformed("Vernaux chain of " + fileName + " ends after " + (j + 1) + " of " + count + " entries");
                        aux += auxNext;
                    }

                    if (next == 0) break;
                    entry += next;
                }
                return needs;
            }

            public List<string> ReadVersionDefinitions()
            {
                List<string> names = new List<string>();
                Table table;
                if (!TryFindTable(ShtGnuVerdef, DtVerdef, DtVerdefnum, "version definition (.gnu.version_d)", out table)) return names;

                long entry = table.Offset;
                for (ulong i = 0; i < table.Count; i++)
                {
                    CheckInTable(table, entry, VerdefSize, "Verdef entry " + i);
                    ushort vdVersion = U16(entry);
                    if (vdVersion != 1) throw Malformed("Verdef entry " + i + " has unsupported vd_version " + vdVersion);
                    ushort auxCount = U16(entry + 6);
                    uint auxOffset = U32(entry + 12);
                    uint next = U32(entry + 16);

                    // Only the first Verdaux names the definition; later ones name its predecessors.
                    if (auxCount > 0)
                    {
                        long aux = entry + auxOffset;
                        CheckInTable(table, aux, VerdauxSize, "Verdaux of Verdef entry " + i);
                        names.Add(table.Strings.Read(this, U32(aux)));
                    }

                    if (next == 0) break;
                    entry += next;
                }
                return names;
            }

            // Section headers are the primary source; stripped or section-less objects still
            // carry the same tables through PT_DYNAMIC, which is what the loader itself reads.
            private bool TryFindTable(uint sectionType, long addressTag, long countTag, string what, out Table table)
            {
                foreach (Section section in _sections)
                {
                    if (section.Type != sectionType) continue;
                    CheckRange(section.Offset, section.Size, what + " section");
                    if (section.Link >= _sections.Count) throw Malformed(what + " section links to nonexistent section " + section.Link);
                    Section strings = _sections[(int)section.Link];
                    if (strings.Type != ShtStrtab) throw Malformed(what + " section links to section " + section.Link + ", which is not a string table");
                    CheckRange(strings.Offset, strings.Size, "string table of " + what);
                    // sh_info holds the entry count; where a producer left it 0, the chain's own
                    // terminating vn_next/vd_next == 0 and the section bounds still end the walk.
                    ulong count = section.Info != 0 ? section.Info : ulong.MaxValue;
                    table = new Table((long)section.Offset, (long)section.Size, count, new StringTable((long)strings.Offset, (long)strings.Size));
                    return true;
                }

                Dictionary<long, ulong> dynamic = ReadDynamic();
                ulong address;
                if (dynamic.TryGetValue(addressTag, out address))
                {
                    ulong count, strtab, strsz;
                    if (!dynamic.TryGetValue(countTag, out count)) throw Malformed(what + ": dynamic section has the table address but no entry count");
                    if (!dynamic.TryGetValue(DtStrtab, out strtab) || !dynamic.TryGetValue(DtStrsz, out strsz)) throw Malformed(what + ": dynamic section has no DT_STRTAB/DT_STRSZ");
                    long offset = AddressToOffset(address, what);
                    long stringsOffset = AddressToOffset(strtab, "dynamic string table");
                    CheckRange((ulong)stringsOffset, strsz, "dynamic string table");
                    // Without a section size the table may extend to the end of the file; entries are still bounds-checked.
                    table = new Table(offset, _data.LongLength - offset, count, new StringTable(stringsOffset, (long)strsz));
                    return true;
                }

                table = default(Table);
                return false;
            }

            private Dictionary<long, ulong> ReadDynamic()
            {
                Dictionary<long, ulong> result = new Dictionary<long, ulong>();
                long offset = -1, size = 0;
                foreach (Section section in _sections)
                {
                    if (section.Type == ShtDynamic) { offset = (long)section.Offset; size = (long)section.Size; break; }
                }
                if (offset < 0)
                {
                    foreach (Segment segment in _segments)
                    {
                        if (segment.Type == PtDynamic) { offset = (long)segment.Offset; size = (long)segment.FileSize; break; }
                    }
                }
                if (offset < 0) return result;

                CheckRange((ulong)offset, (ulong)size, "dynamic section");
                for (long at = offset; at + 16 <= offset + size; at += 16)
                {
                    long tag = (long)U64(at);
                    if (tag == DtNull) break;
                    if (!result.ContainsKey(tag)) result[tag] = U64(at + 8);
                }
                return result;
            }

            private long AddressToOffset(ulong address, string what)
            {
                foreach (Segment segment in _segments)
                {
                    if (segment.Type != PtLoad) continue;
                    if (address >= segment.VirtualAddress && address - segment.VirtualAddress < segment.FileSize)
                    {
                        ulong offset = segment.Offset + (address - segment.VirtualAddress);
                        CheckRange(offset, 1, what);
                        return (long)offset;
                    }
                }
                throw Malformed(what + " address 0x" + address.ToString("x") + " is not inside any PT_LOAD segment");
            }

            private void CheckInTable(Table table, long offset, int size, string what)
            {
                if (offset < table.Offset || offset + size > table.Offset + table.Size)
                {
                    throw Malformed(what + " at 0x" + offset.ToString("x") + " lies outside its table (0x" + table.Offset.ToString("x") + "+0x" + table.Size.ToString("x") + ")");
                }
                CheckRange((ulong)offset, (ulong)size, what);
            }

            private void CheckRange(ulong offset, ulong size, string what)
            {
                ulong length = (ulong)_data.LongLength;
                if (offset > length || size > length - offset)
                {
                    throw Malformed("truncated or corrupt: " + what + " at 0x" + offset.ToString("x") + " (0x" + size.ToString("x") + " bytes) extends past the end of the file (0x" + length.ToString("x") + " bytes)");
                }
            }

            private InvalidDataException Malformed(string problem)
            {
                return new InvalidDataException(_path + ": " + problem + ".");
            }

            private ushort U16(long at)
            {
                CheckRange((ulong)at, 2, "field");
                return (ushort)(_data[at] | (_data[at + 1] << 8));
            }

            private uint U32(long at)
            {
                CheckRange((ulong)at, 4, "field");
                return (uint)(_data[at] | (_data[at + 1] << 8) | (_data[at + 2] << 16) | (_data[at + 3] << 24));
            }

            private ulong U64(long at)
            {
                CheckRange((ulong)at, 8, "field");
                return U32(at) | ((ulong)U32(at + 4) << 32);
            }

            private struct Section
            {
                public readonly uint Type;
                public readonly ulong Offset;
                public readonly ulong Size;
                public readonly uint Link;
                public readonly uint Info;

                public Section(uint type, ulong offset, ulong size, uint link, uint info)
                {
                    Type = type; Offset = offset; Size = size; Link = link; Info = info;
                }
            }

            private struct Segment
            {
                public readonly uint Type;
                public readonly ulong Offset;
                public readonly ulong VirtualAddress;
                public readonly ulong FileSize;

                public Segment(uint type, ulong offset, ulong virtualAddress, ulong fileSize)
                {
                    Type = type; Offset = offset; VirtualAddress = virtualAddress; FileSize = fileSize;
                }
            }

            private struct Table
            {
                public readonly long Offset;
                public readonly long Size;
                public readonly ulong Count;
                public readonly StringTable Strings;

                public Table(long offset, long size, ulong count, StringTable strings)
                {
                    Offset = offset; Size = size; Count = count; Strings = strings;
                }
            }

            private struct StringTable
            {
                private readonly long _offset;
                private readonly long _size;

                public StringTable(long offset, long size)
                {
                    _offset = offset; _size = size;
                }

                public string Read(ElfImage image, uint index)
                {
                    if (index >= _size) throw image.Malformed("string index " + index + " is outside the string table (" + _size + " bytes)");
                    long start = _offset + index;
                    long end = start;
                    long limit = _offset + _size;
                    while (end < limit && image._data[end] != 0) end++;
                    if (end == limit) throw image.Malformed("unterminated string at string table index " + index);
                    return Encoding.UTF8.GetString(image._data, (int)start, (int)(end - start));
                }
            }
        }
    }

#if !(NETCOREAPP || NETFRAMEWORK || NETSTANDARD) || ATTNPORTAL_ELF_PATCHER_TASK
    /// <summary>
    /// MSBuild face of <see cref="ElfVersionPatcher"/>. Compiled only by RoslynCodeTaskFactory,
    /// which defines no target-framework symbols, so projects that include this file for testing
    /// need no MSBuild references.
    /// </summary>
    public sealed class MarkElfVersionNeedWeak : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = new Microsoft.Build.Framework.ITaskItem[0];

        [Microsoft.Build.Framework.Required]
        public string Version { get; set; } = "";

        /// <summary>
        /// When true (the default), leave the files alone if the system libstdc++ already defines
        /// <see cref="Version"/>: the library then loads as shipped. Set false to patch anyway,
        /// e.g. when building on a new distribution for deployment to an old one.
        /// </summary>
        public bool OnlyIfSystemLibStdCxxLacksVersion { get; set; } = true;

        [Microsoft.Build.Framework.Output]
        public Microsoft.Build.Framework.ITaskItem[] PatchedFiles { get; set; } = new Microsoft.Build.Framework.ITaskItem[0];

        [Microsoft.Build.Framework.Output]
        public string SystemLibStdCxx { get; set; } = "";

        public override bool Execute()
        {
            if (OnlyIfSystemLibStdCxxLacksVersion)
            {
                string? systemLibrary;
                bool defined;
                try
                {
                    defined = ElfVersionPatcher.SystemLibStdCxxDefines(Version, out systemLibrary);
                }
                catch (InvalidDataException e)
                {
                    // An unreadable system library says nothing about the version; patching is harmless where it is present.
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal, "Could not read the system libstdc++ ({0}); patching anyway.", e.Message);
                    defined = false;
                    systemLibrary = null;
                }

                SystemLibStdCxx = systemLibrary ?? "";
                if (defined)
                {
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal,
                        "{0} defines {1}; leaving {2} file(s) as shipped.", systemLibrary, Version, Files.Length);
                    return true;
                }
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low,
                    "System libstdc++ {0} lacks {1}.", systemLibrary ?? "(not found)", Version);
            }

            List<Microsoft.Build.Framework.ITaskItem> patched = new List<Microsoft.Build.Framework.ITaskItem>();
            foreach (Microsoft.Build.Framework.ITaskItem item in Files)
            {
                string path = item.GetMetadata("FullPath");
                PatchOutcome outcome;
                try
                {
                    outcome = ElfVersionPatcher.MarkVersionNeedWeak(path, Version);
                }
                catch (InvalidDataException e)
                {
                    Log.LogError("Cannot mark the {0} version need weak: {1}", Version, e.Message);
                    continue;
                }
                catch (IOException e)
                {
                    Log.LogError("Cannot mark the {0} version need weak in {1}: {2}", Version, path, e.Message);
                    continue;
                }

                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, "{0}: {1}", path, outcome);
                if (outcome == PatchOutcome.Patched) patched.Add(new Microsoft.Build.Utilities.TaskItem(path));
            }

            PatchedFiles = patched.ToArray();
            return !Log.HasLoggedErrors;
        }
    }
#endif
}
