using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace NginxOAuth.Native;

/// <summary>
/// Opaque int64 handles: GCHandle.ToIntPtr values, remembered in a map so a
/// stale or forged handle is refused (NOX_E_HANDLE) instead of dereferenced.
/// Every request looks its policy up here, so the lookup takes no lock
/// (ConcurrentDictionary reads are lock-free).
/// </summary>
internal static class Handles
{
    private static readonly ConcurrentDictionary<nint, object> Live = new();

    public static long Add(object target)
    {
        GCHandle handle = GCHandle.Alloc(target);
        nint value = GCHandle.ToIntPtr(handle);
        Live[value] = target;
        return value;
    }

    public static T? Get<T>(long handle)
        where T : class =>
        Live.TryGetValue((nint)handle, out object? target) ? target as T : null;

    /// <summary>Frees the handle when it is live and holds a <typeparamref name="T"/>.</summary>
    public static T? Remove<T>(long handle)
        where T : class
    {
        if (!Live.TryGetValue((nint)handle, out object? value) || value is not T target
            || !Live.TryRemove((nint)handle, out _))
        {
            return null;
        }
        GCHandle.FromIntPtr((nint)handle).Free();
        return target;
    }
}
