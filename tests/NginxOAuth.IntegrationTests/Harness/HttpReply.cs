using System.Collections.Generic;
using System.Linq;
using System.Net.Http;
using System.Net.Http.Headers;

namespace NginxOAuth.IntegrationTests.Harness;

/// <summary>An HTTP answer, read whole, with the raw header values.</summary>
public sealed class HttpReply
{
    private readonly Dictionary<string, string[]> _headers;

    public HttpReply(HttpResponseMessage response, string body)
    {
        Status = (int)response.StatusCode;
        Body = body;
        _headers = new Dictionary<string, string[]>(System.StringComparer.OrdinalIgnoreCase);
        foreach (KeyValuePair<string, HeaderStringValues> h in response.Headers.NonValidated)
        {
            _headers[h.Key] = h.Value.ToArray();
        }

        foreach (KeyValuePair<string, HeaderStringValues> h in response.Content.Headers.NonValidated)
        {
            _headers[h.Key] = h.Value.ToArray();
        }
    }

    public int Status { get; }

    public string Body { get; }

    /// <summary>Every WWW-Authenticate header, as sent.</summary>
    public string[] Challenges => Header("WWW-Authenticate");

    /// <summary>The only WWW-Authenticate header, or null when there is none.</summary>
    public string? Challenge => Challenges.Length switch
    {
        0 => null,
        1 => Challenges[0],
        _ => throw new System.InvalidOperationException(
            "more than one WWW-Authenticate header: " + string.Join(" | ", Challenges)),
    };

    public string[] Header(string name) => _headers.TryGetValue(name, out string[]? v) ? v : [];

    public override string ToString() =>
        $"{Status} {Body}" + (Challenges.Length > 0 ? $" [WWW-Authenticate: {string.Join(" | ", Challenges)}]" : "");
}
