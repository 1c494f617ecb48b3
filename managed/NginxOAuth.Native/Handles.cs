using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;

namespace NginxOAuth.Native;

/// <summary>
/// Opaque int64 handles: GCHandle.ToIntPtr values, remembered in a set so a
/// stale or forged handle is refused (NOX_E_HANDLE) instead of dereferenced.
/// </summary>
internal static class Handles
{
    private static readonly object Gate = new();
    private static readonly HashSet<nint> Live = new();

    public static long Add(object target)
    {
        GCHandle handle = GCHandle.Alloc(target);
        nint value = GCHandle.ToIntPtr(handle);
        lock (Gate)
        {
            Live.Add(value);
        }
        return value;
    }

    public static T? Get<T>(long handle)
        where T : class
    {
        lock (Gate)
        {
            if (!Live.Contains((nint)handle))
            {
                return null;
            }
            return GCHandle.FromIntPtr((nint)handle).Target as T;
        }
    }

    /// <summary>Frees the handle when it is live and holds a <typeparamref name="T"/>.</summary>
    public static T? Remove<T>(long handle)
        where T : class
    {
        lock (Gate)
        {
            if (!Live.Contains((nint)handle))
            {
                return null;
            }
            GCHandle gc = GCHandle.FromIntPtr((nint)handle);
            if (gc.Target is not T target)
            {
                return null;
            }
            Live.Remove((nint)handle);
            gc.Free();
            return target;
        }
    }
}
