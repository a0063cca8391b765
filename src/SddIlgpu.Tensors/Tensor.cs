// A float32 tensor: a shaped view into an arena. Views never own memory; the arena does.
using ILGPU;
using ILGPU.Runtime;

namespace SddIlgpu.Tensors;

/// <summary>
/// A row-major float32 tensor living in device memory, as a view (offset, shape) into an <see cref="Arena"/>.
/// Integer data such as token ids is stored as exact small floats.
/// </summary>
public sealed class Tensor
{
    internal Tensor(Arena arena, long offset, Shape shape, string name)
    {
        Arena = arena;
        Offset = offset;
        Shape = shape;
        Name = name;
    }

    public Arena Arena { get; }
    public Device Device => Arena.Device;

    /// <summary>Element offset of this view inside its arena.</summary>
    public long Offset { get; }

    public Shape Shape { get; }
    public string Name { get; }
    public long Length => Shape.Length;

    internal ArrayView<float> View => Arena.View.SubView(Offset, Shape.Length);

    /// <summary>The same memory seen with another shape of the same length.</summary>
    public Tensor Reshape(Shape shape)
    {
        if (shape.Length != Length)
            throw new ArgumentException($"Cannot reshape {Name} {Shape} ({Length} elements) to {shape} ({shape.Length} elements).", nameof(shape));
        return new Tensor(Arena, Offset, shape, Name);
    }

    /// <summary>A contiguous sub-range of the flattened tensor, as a new view.</summary>
    public Tensor Slice(long start, Shape shape, string? name = null)
    {
        if (start < 0 || start + shape.Length > Length)
            throw new ArgumentOutOfRangeException(nameof(start), $"Slice [{start}, {start + shape.Length}) is outside {Name} {Shape} ({Length} elements).");
        return new Tensor(Arena, Offset + start, shape, name ?? Name);
    }

    /// <summary>Copies host data into the tensor (synchronous: the data may be reused when this returns).</summary>
    public unsafe void Upload(ReadOnlySpan<float> data)
    {
        if (data.Length != Length)
            throw new ArgumentException($"Upload to {Name} {Shape} needs {Length} values; got {data.Length}.", nameof(data));
        var view = View;
        Device.Counters.CountCopy();
        // ILGPU's ref overload turns the ref into a raw pointer and then allocates: the data must stay pinned
        // until the copy has finished, or a collection in between moves an array from under the copy.
        fixed (float* p = data)
            view.CopyFromCPU(Device.Stream, ref *p, data.Length);
    }

    /// <summary>Copies the tensor into host memory (synchronous: the data is complete when this returns).</summary>
    public unsafe void Download(Span<float> data)
    {
        if (data.Length != Length)
            throw new ArgumentException($"Download of {Name} {Shape} needs room for {Length} values; got {data.Length}.", nameof(data));
        var view = View;
        Device.Counters.CountCopy();
        // Pinned for the whole copy, as in Upload (unpinned, a moved array kept its zeros: issue 10 §6).
        fixed (float* p = data)
            view.CopyToCPU(Device.Stream, ref *p, data.Length);
    }

    /// <summary>Downloads into a new array (allocates: not for the training step).</summary>
    public float[] ToArray()
    {
        var a = new float[Length];
        Download(a);
        return a;
    }

    /// <summary>
    /// The tensor's memory as a host span. Only for tensors on a CPU device (ILGPU's CPU accelerator or the
    /// managed CPU path), whose device memory is host memory; the managed CPU ops work through this.
    /// </summary>
    public unsafe Span<float> HostSpan()
    {
        if (!Device.IsHostMemory)
            throw new InvalidOperationException($"{Name} lives on {Device.Name}, not in host memory; use Download/Upload.");
        var ptr = (float*)Arena.View.LoadEffectiveAddressAsPtr().ToPointer();
        return new Span<float>(ptr + Offset, checked((int)Length));
    }

    /// <summary>Throws when the tensor does not have the expected shape.</summary>
    public Tensor Expect(Shape expected, string role)
    {
        if (Shape != expected)
            throw new ArgumentException($"{role}: expected shape {expected}, got {Shape} ({Name}).");
        return this;
    }

    /// <summary>Throws when the tensor does not hold the expected number of elements.</summary>
    public Tensor ExpectLength(long expected, string role)
    {
        if (Length != expected)
            throw new ArgumentException($"{role}: expected {expected} elements, got {Length} in {Name} {Shape}.");
        return this;
    }

    public override string ToString() => $"{Name} {Shape}";
}
