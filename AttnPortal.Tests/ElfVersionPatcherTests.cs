using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using AttnPortal.Build;
using Xunit;

namespace AttnPortal.Tests;

public sealed class ElfVersionPatcherTests : IDisposable
{
    private const string MissingVersion = "GLIBCXX_3.4.32";

    // The patch exists for this exact TorchSharp release; a newer one may need a different fix.
    private const string TorchSharpVersion = "0.107.0";

    private readonly string _tempDir = Path.Combine(Path.GetTempPath(), "attnportal-elf-" + Guid.NewGuid().ToString("N"));

    public ElfVersionPatcherTests() => Directory.CreateDirectory(_tempDir);

    public void Dispose() => Directory.Delete(_tempDir, recursive: true);

    [Fact]
    public void Patch_SetsWeakFlagOnTheGlibcxx3432NeedAndChangesNothingElse()
    {
        string cache = CacheLibrary();
        byte[] cacheBefore = SHA256.HashData(File.ReadAllBytes(cache));
        string copy = CopyToTemp(cache);
        byte[] original = File.ReadAllBytes(copy);
        DateTime mtime = File.GetLastWriteTimeUtc(copy);

        // Located with a separate, section-header-only reader so the patcher does not grade its own homework.
        (long flagsOffset, ushort flagsBefore) = IndependentVernauxFlags(original, MissingVersion);
        Assert.Equal(0, flagsBefore & 0x2);

        Assert.Equal(PatchOutcome.Patched, ElfVersionPatcher.MarkVersionNeedWeak(copy, MissingVersion));

        byte[] patched = File.ReadAllBytes(copy);
        Assert.Equal(original.Length, patched.Length);
        long[] changed = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).Select(i => (long)i).ToArray();
        Assert.NotEmpty(changed);
        Assert.All(changed, i => Assert.InRange(i, flagsOffset, flagsOffset + 1));
        Assert.Equal((ushort)(flagsBefore | 0x2), BinaryPrimitives.ReadUInt16LittleEndian(patched.AsSpan((int)flagsOffset)));

        // Every other version need keeps its flags; only the GLIBCXX_3.4.32 one became weak.
        var before = ElfVersionPatcher.ReadVersionNeeds(cache);
        var after = ElfVersionPatcher.ReadVersionNeeds(copy);
        Assert.Equal(before.Count, after.Count);
        for (int i = 0; i < before.Count; i++)
        {
            Assert.Equal(before[i].VersionName, after[i].VersionName);
            bool target = before[i].VersionName == MissingVersion;
            Assert.Equal(target ? (ushort)(before[i].Flags | 0x2) : before[i].Flags, after[i].Flags);
        }

        // The build relies on an unchanged timestamp to keep incremental copies from undoing the patch.
        Assert.Equal(mtime, File.GetLastWriteTimeUtc(copy));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(File.GetUnixFileMode(cache), File.GetUnixFileMode(copy));
        }
        Assert.Equal(new[] { copy }, Directory.GetFiles(_tempDir, "*", SearchOption.AllDirectories));
        Assert.Equal(cacheBefore, SHA256.HashData(File.ReadAllBytes(cache)));
    }

    [Fact]
    public void Patch_Twice_SecondIsANoOp()
    {
        string copy = CopyToTemp(CacheLibrary());
        Assert.Equal(PatchOutcome.Patched, ElfVersionPatcher.MarkVersionNeedWeak(copy, MissingVersion));
        byte[] once = File.ReadAllBytes(copy);
        DateTime mtime = File.GetLastWriteTimeUtc(copy);

        Assert.Equal(PatchOutcome.AlreadyWeak, ElfVersionPatcher.MarkVersionNeedWeak(copy, MissingVersion));

        Assert.Equal(once, File.ReadAllBytes(copy));
        Assert.Equal(mtime, File.GetLastWriteTimeUtc(copy));
    }

    [Theory]
    [InlineData("GLIBCXX_9.9.99")]
    [InlineData("GLIBCXX_3.4.3")] // a prefix of needed names: matching must be exact
    [InlineData("glibcxx_3.4.32")] // version names are case-sensitive
    public void Patch_VersionNotNeeded_ReturnsNotNeededAndLeavesFileAlone(string version)
    {
        string copy = CopyToTemp(CacheLibrary());
        byte[] original = File.ReadAllBytes(copy);

        Assert.Equal(PatchOutcome.NotNeeded, ElfVersionPatcher.MarkVersionNeedWeak(copy, version));

        Assert.Equal(original, File.ReadAllBytes(copy));
    }

    public static TheoryData<string, string> MalformedFiles => new()
    {
        { "text", "not an ELF file" },
        { "empty", "not an ELF file" },
        { "header-only", "truncated" },
        { "cut-in-verneed", "truncated" },
        { "elf32", "not ELF64" },
        { "big-endian", "not little-endian" },
        { "riscv", "unsupported e_machine 243" },
    };

    [Theory]
    [MemberData(nameof(MalformedFiles))]
    public void Patch_MalformedFile_ThrowsInvalidDataAndLeavesFileUnchanged(string kind, string expectedProblem)
    {
        byte[] library = File.ReadAllBytes(CacheLibrary());
        (long flagsOffset, _) = IndependentVernauxFlags(library, MissingVersion);
        byte[] content = kind switch
        {
            "text" => "#!/bin/sh\necho not a library\n"u8.ToArray(),
            "empty" => [],
            "header-only" => library[..64],
            // Headers intact, but the file ends inside .gnu.version_r, before the entry to patch.
            "cut-in-verneed" => library[..(int)(flagsOffset - 8)],
            "elf32" => WithByte(library, 4, 1),
            "big-endian" => WithByte(library, 5, 2),
            "riscv" => WithByte(library, 18, 243),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        string path = Path.Combine(_tempDir, kind + ".so");
        File.WriteAllBytes(path, content);

        var error = Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.MarkVersionNeedWeak(path, MissingVersion));

        Assert.Contains(path, error.Message);
        Assert.Contains(expectedProblem, error.Message);
        Assert.Equal(content, File.ReadAllBytes(path));
        Assert.Equal(new[] { path }, Directory.GetFiles(_tempDir));
    }

    [Fact]
    public void Patch_WithoutSectionHeaders_FindsTheNeedThroughTheDynamicSegment()
    {
        string copy = CopyToTemp(CacheLibrary());
        byte[] original = File.ReadAllBytes(copy);
        (long flagsOffset, ushort flagsBefore) = IndependentVernauxFlags(original, MissingVersion);
        var withSections = ElfVersionPatcher.ReadVersionNeeds(copy);

        // What strip --strip-section-headers (or a packer) leaves: e_shoff = e_shnum = e_shstrndx = 0.
        byte[] stripped = (byte[])original.Clone();
        Array.Clear(stripped, 40, 8);
        Array.Clear(stripped, 60, 4);
        File.WriteAllBytes(copy, stripped);

        var withoutSections = ElfVersionPatcher.ReadVersionNeeds(copy);
        Assert.Equal(withSections.Select(n => (n.FileName, n.VersionName, n.FlagsOffset)),
                     withoutSections.Select(n => (n.FileName, n.VersionName, n.FlagsOffset)));

        Assert.Equal(PatchOutcome.Patched, ElfVersionPatcher.MarkVersionNeedWeak(copy, MissingVersion));
        byte[] patched = File.ReadAllBytes(copy);
        Assert.Equal((ushort)(flagsBefore | 0x2), BinaryPrimitives.ReadUInt16LittleEndian(patched.AsSpan((int)flagsOffset)));
        patched[flagsOffset] = stripped[flagsOffset];
        patched[flagsOffset + 1] = stripped[flagsOffset + 1];
        Assert.Equal(stripped, patched);
    }

    [Fact]
    public void HasVersionDefinition_ReadsDefinitionsNotNeeds()
    {
        // libLibTorchSharp needs GLIBCXX_3.4.32 but defines no versions at all.
        string library = CacheLibrary();
        Assert.Contains(ElfVersionPatcher.ReadVersionNeeds(library), n => n.VersionName == MissingVersion);
        Assert.False(ElfVersionPatcher.HasVersionDefinition(library, MissingVersion));

        if (!OperatingSystem.IsLinux() || RuntimeInformation.OSArchitecture is not (Architecture.X64 or Architecture.Arm64))
        {
            return;
        }
        string? libstdcxx = ElfVersionPatcher.FindSystemLibStdCxx();
        Assert.NotNull(libstdcxx);
        Assert.True(ElfVersionPatcher.HasVersionDefinition(libstdcxx, "GLIBCXX_3.4"));
        Assert.True(ElfVersionPatcher.HasVersionDefinition(libstdcxx, "CXXABI_1.3"));
        Assert.False(ElfVersionPatcher.HasVersionDefinition(libstdcxx, "GLIBCXX_99.0"));
        Assert.False(ElfVersionPatcher.HasVersionDefinition(libstdcxx, "GLIBCXX_3"));
    }

    [Fact]
    public void BuildOutputLibrary_IsPatchedUnlessSystemLibStdCxxIsNewEnough()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.OSArchitecture != Architecture.X64)
        {
            return; // the build only patches on Linux; TorchSharp ships no linux-arm64 library
        }
        string output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(output), $"{output} is missing: the test project should copy TorchSharp's native assets.");

        if (ElfVersionPatcher.SystemLibStdCxxDefines(MissingVersion, out string? libstdcxx))
        {
            return; // nothing to patch on this machine: the library loads as shipped
        }

        ElfVersionNeed need = Assert.Single(ElfVersionPatcher.ReadVersionNeeds(output), n => n.VersionName == MissingVersion);
        Assert.True(need.IsWeak, $"{output} still requires {MissingVersion}, which {libstdcxx ?? "the system libstdc++"} lacks: Directory.Build.targets did not patch it.");

        // The point of the patch: the loader now accepts it (its libtorch dependencies sit beside it, found via RUNPATH $ORIGIN).
        // Deliberately not freed: dlclose could unload libtorch under other tests that use TorchSharp.
        Assert.True(NativeLibrary.TryLoad(output, out _), $"dlopen of {output} failed even though it is patched.");
    }

    [Fact]
    public void NuGetCacheLibrary_IsNeverPatched()
    {
        // The build must patch output copies only; a weak flag here would mean it wrote through to the shared cache.
        ElfVersionNeed need = Assert.Single(ElfVersionPatcher.ReadVersionNeeds(CacheLibrary()), n => n.VersionName == MissingVersion);
        Assert.False(need.IsWeak);
    }

    private static string CacheLibrary()
    {
        string? root = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrEmpty(root))
        {
            root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        }
        string path = Path.Combine(root, "torchsharp", TorchSharpVersion, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(path), $"TorchSharp's native library is not in the NuGet cache at {path}; restore the solution first.");
        return path;
    }

    private string CopyToTemp(string source)
    {
        string destination = Path.Combine(_tempDir, Path.GetFileName(source));
        File.Copy(source, destination);
        return destination;
    }

    private static byte[] WithByte(byte[] data, int index, byte value)
    {
        byte[] copy = (byte[])data.Clone();
        copy[index] = value;
        return copy;
    }

    /// <summary>File offset and value of vna_flags for <paramref name="version"/>, found via section headers only.</summary>
    private static (long Offset, ushort Flags) IndependentVernauxFlags(byte[] elf, string version)
    {
        ReadOnlySpan<byte> d = elf;
        long shoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(d[40..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(d[60..]);
        for (int s = 0; s < shnum; s++)
        {
            ReadOnlySpan<byte> sh = d.Slice((int)(shoff + s * 64L), 64);
            if (BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]) != 0x6ffffffe) continue; // SHT_GNU_verneed

            long offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(sh[24..]);
            int count = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[44..]);
            int link = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[40..]);
            long strtab = (long)BinaryPrimitives.ReadUInt64LittleEndian(d.Slice((int)(shoff + link * 64L) + 24));

            long vn = offset;
            for (int i = 0; i < count; i++)
            {
                int cnt = BinaryPrimitives.ReadUInt16LittleEndian(d[(int)(vn + 2)..]);
                long vna = vn + BinaryPrimitives.ReadUInt32LittleEndian(d[(int)(vn + 8)..]);
                for (int j = 0; j < cnt; j++)
                {
                    uint name = BinaryPrimitives.ReadUInt32LittleEndian(d[(int)(vna + 8)..]);
                    ReadOnlySpan<byte> str = d[(int)(strtab + name)..];
                    if (System.Text.Encoding.ASCII.GetString(str[..str.IndexOf((byte)0)]) == version)
                    {
                        return (vna + 4, BinaryPrimitives.ReadUInt16LittleEndian(d[(int)(vna + 4)..]));
                    }
                    vna += BinaryPrimitives.ReadUInt32LittleEndian(d[(int)(vna + 12)..]);
                }
                vn += BinaryPrimitives.ReadUInt32LittleEndian(d[(int)(vn + 12)..]);
            }
        }
        throw new InvalidOperationException($"{version} is not among the version needs; the test fixture changed.");
    }
}
