using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Inference.Generation;

/// <summary>
/// Lets the host wait for the work enqueued up to a point (a step's outputs copied to the host) but not for what was
/// enqueued after it (the next step, launched before this step's token is read, so the GPU never waits for the host):
/// a CUDA event through the graph shim; without the shim a device synchronisation (correct, but then nothing
/// overlaps); nothing on the CPU, where every op has finished when it returns.
/// </summary>
internal sealed class StepFence : IDisposable
{
    private readonly Device _device;
    private IntPtr _event;

    public StepFence(Device device)
    {
        _device = device;
        if (device.type == DeviceType.CUDA && CudaGraph.ShimLoaded.Value) _event = CudaGraph.ap_event_new();
    }

    public void Mark()
    {
        if (_event != IntPtr.Zero) CudaGraph.Check(CudaGraph.ap_event_record(_event), "event record");
    }

    public void Wait()
    {
        if (_event != IntPtr.Zero) CudaGraph.Check(CudaGraph.ap_event_synchronize(_event), "event synchronize");
        else if (_device.type == DeviceType.CUDA) torch.cuda.synchronize();
    }

    public void Dispose()
    {
        if (_event == IntPtr.Zero) return;
        CudaGraph.ap_event_free(_event);
        _event = IntPtr.Zero;
    }
}
