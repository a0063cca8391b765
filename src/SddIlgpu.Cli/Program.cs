// The sdd command-line tool.
namespace SddIlgpu.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("sdd: not yet");
        return args.Length == 0 ? 2 : 2;
    }
}
