// The ILGPU implementation of every op family, compiled when the device opens.
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Tensors.Kernels;

/// <summary>Every ILGPU kernel family of a device, loaded (compiled) eagerly in the constructor.</summary>
internal sealed class KernelOps
{
    int cooperativeThreads;

    public KernelOps(Device device)
    {
        cooperativeThreads = device.Geometry.HostMemory
            ? device.Geometry.WarpSize
            : Math.Min(KernelInfra.MaxCooperativeThreads, device.Geometry.MaxGroupSize);
        Elementwise = new ElementwiseKernels(device);
        Reduction = new ReductionKernels(device);
        Random = new RandomKernels(device);
        Gemm = new GemmKernels(device);
        Norm = new NormKernels(device);
        Rope = new RopeKernels(device);
        Attention = new AttentionKernels(device, Gemm);
        Activation = new ActivationKernels(device);
        Embedding = new EmbeddingKernels(device);
        Loss = new LossKernels(device, Reduction);
        Optimizer = new OptimizerKernels(device);
    }

    /// <summary>
    /// Threads per group of the cooperative kernels (reduction trees, row teams, column partials); a power of two up
    /// to 256. Results are bit-identical on repeats for one value; tests set 256 on the CPU accelerator to run the
    /// GPU launch shape at tiny sizes.
    /// </summary>
    internal int CooperativeThreads
    {
        get => cooperativeThreads;
        set
        {
            if (value < 1 || value > KernelInfra.MaxCooperativeThreads || (value & (value - 1)) != 0)
                throw new ArgumentOutOfRangeException(nameof(value), $"Cooperative group size {value} must be a power of two from 1 to {KernelInfra.MaxCooperativeThreads}.");
            cooperativeThreads = value;
        }
    }

    public ElementwiseKernels Elementwise { get; }
    public ReductionKernels Reduction { get; }
    public RandomKernels Random { get; }
    public GemmKernels Gemm { get; }
    public NormKernels Norm { get; }
    public RopeKernels Rope { get; }
    public AttentionKernels Attention { get; }
    public ActivationKernels Activation { get; }
    public EmbeddingKernels Embedding { get; }
    public LossKernels Loss { get; }
    public OptimizerKernels Optimizer { get; }

    public OpSet ToOpSet() => new()
    {
        Gemm = Gemm,
        Norm = Norm,
        Rope = Rope,
        Attention = Attention,
        Activation = Activation,
        Embedding = Embedding,
        Loss = Loss,
        Elementwise = Elementwise,
        Reduction = Reduction,
        Optimizer = Optimizer,
        Random = Random,
    };
}
