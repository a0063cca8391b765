// `sdd devices`: every device this machine offers, including rejected OpenCL devices with the reason and those
// accepted without the generic address space with how.
using System.CommandLine;
using SddIlgpu.Tensors;

namespace SddIlgpu.Cli;

public static class DevicesCommand
{
    public static Command Create()
    {
        var command = new Command("devices", "list compute devices");
        command.SetAction(_ =>
        {
            Console.WriteLine($"ILGPU {Device.IlgpuVersion}, .NET {Environment.Version}, {Environment.ProcessorCount} cores");
            Console.WriteLine($"{"name",-18} {"kind",-9} {"usable",-7} {"memory",9} {"group",6} {"MPs",5} {"warp",5}  description");
            foreach (var d in Device.List())
            {
                Console.WriteLine($"{d.Name,-18} {d.Kind,-9} {(d.Usable ? "yes" : "no"),-7} {d.MemoryBytes / (1024.0 * 1024 * 1024),7:F1}GB {d.MaxGroupSize,6} {d.Multiprocessors,5} {d.WarpSize,5}  {d.Description}; {d.Details}");
                if (d.Reason is not null)
                    Console.WriteLine($"{"",18} rejected: {d.Reason}");
                if (d.Note is not null)
                    Console.WriteLine($"{"",18} {d.Note}");
            }
            return 0;
        });
        return command;
    }
}
