// Finds ../shared (golden fixtures, corpus, reference script) beside the repository root.
namespace SddIlgpu.Tests.Support;

public static class SharedPaths
{
    static readonly Lazy<string> RootDir = new(FindRoot);

    /// <summary>The repository root (the folder holding SddIlgpu.sln).</summary>
    public static string Repo => RootDir.Value;

    /// <summary>The shared folder: $SDD_SHARED, or ../shared beside the repository.</summary>
    public static string Shared =>
        Environment.GetEnvironmentVariable("SDD_SHARED") is { Length: > 0 } env ? env : Path.GetFullPath(Path.Combine(Repo, "..", "shared"));

    public static string Golden => Path.Combine(Shared, "golden");
    public static string Shakespeare => Path.Combine(Shared, "data", "tinyshakespeare.txt");
    public static string ReferenceScript => Path.Combine(Shared, "reference", "sdd_reference.py");

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "SddIlgpu.sln")))
                return dir.FullName;
        throw new DirectoryNotFoundException($"SddIlgpu.sln not found above {AppContext.BaseDirectory}.");
    }
}
