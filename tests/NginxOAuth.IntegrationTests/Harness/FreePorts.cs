using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;

namespace NginxOAuth.IntegrationTests.Harness;

/// <summary>
/// Hands out loopback ports for nginx to listen on.  Ports come from below
/// the kernel's ephemeral range (32768-60999 on Linux), so outgoing
/// connections and port-0 listeners (Kestrel) never take one between the
/// check and nginx's bind; each port is handed out once per test run.
/// </summary>
public static class FreePorts
{
    private const int First = 20000;
    private const int Last = 32000;

    private static readonly object _lock = new();
    private static readonly HashSet<int> _handedOut = [];
    private static int _next = First + (Environment.ProcessId * 37 % (Last - First));

    public static int Next()
    {
        lock (_lock)
        {
            for (int attempt = 0; attempt < Last - First; attempt++)
            {
                int port = _next;
                _next = _next >= Last ? First : _next + 1;

                if (_handedOut.Contains(port) || !IsFree(port))
                {
                    continue;
                }

                _handedOut.Add(port);
                return port;
            }
        }

        throw new InvalidOperationException($"no free loopback port in {First}-{Last}");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
