using System;
using System.Linq;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>
/// Merge from the parent: a nested location and an <c>if</c> block inherit
/// the enclosing location's exchange (either syntax), a child's
/// <c>STSExchange disabled</c> / <c>STSType disabled</c> turns it off, and a
/// child's own exchange (either syntax) replaces the parent's.
/// </summary>
[TestFixture]
public sealed class StsMergeTests : NginxFixture
{
    private FakeWsTrustSts _sts = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _sts = await FakeWsTrustSts.StartAsync();
        _sts.Mode = WsTrustMode.Binary();
        string url = _sts.Endpoint;
        nginx.Start($$"""
            map $http_authorization $src {
                default "";
                "~*^Bearer\s+(?<token>[\S]+)$" $token;
            }

            server {
                listen 127.0.0.1:{{nginx.Port}};

                location /later/ {
                    STSExchange wstrust {{url}} "value_type=urn:parent-later";
                    STSVariables $src $t1;

                    location /later/child/ {
                        {{nginx.Echo("[$t1]")}}
                    }
                    location /later/child/grandchild/ {
                        {{nginx.Echo("[$t1]")}}
                    }
                    location /later/exchange-off/ {
                        STSExchange disabled;
                        {{nginx.Echo("[$t1]")}}
                    }
                    location /later/type-off/ {
                        STSType disabled;
                        {{nginx.Echo("[$t1]")}}
                    }
                    location /later/own-seed/ {
                        STSType wstrust;
                        STSWSTrustEndpoint {{url}};
                        STSWSTrustValueType urn:child-seed;
                        {{nginx.Echo("[$t1]")}}
                    }
                    location /later/off-then-on/ {
                        STSExchange disabled;
                        location /later/off-then-on/on/ {
                            STSExchange wstrust {{url}} "value_type=urn:grandchild";
                            {{nginx.Echo("[$t1]")}}
                        }
                        {{nginx.Echo("[$t1]")}}
                    }

                    if ($arg_if) {
                        set $if_taken 1;
                    }
                    if ($arg_exchange_off) {
                        STSExchange disabled;
                    }
                    if ($arg_type_off) {
                        STSType disabled;
                    }
                    {{nginx.Echo("[$t1]")}}
                }

                location /seed/ {
                    STSType wstrust;
                    STSWSTrustEndpoint {{url}};
                    STSWSTrustValueType urn:parent-seed;
                    STSVariables $src $t2;

                    location /seed/child/ {
                        {{nginx.Echo("[$t2]")}}
                    }
                    location /seed/type-off/ {
                        STSType disabled;
                        {{nginx.Echo("[$t2]")}}
                    }
                    location /seed/exchange-off/ {
                        STSExchange disabled;
                        {{nginx.Echo("[$t2]")}}
                    }
                    location /seed/own-later/ {
                        STSExchange wstrust {{url}} "value_type=urn:child-later";
                        {{nginx.Echo("[$t2]")}}
                    }
                    location /seed/own-value-type/ {
                        STSWSTrustValueType urn:child-value-type;
                        {{nginx.Echo("[$t2]")}}
                    }

                    if ($arg_if) {
                        set $if_taken 1;
                    }
                    if ($arg_type_off) {
                        STSType disabled;
                    }
                    {{nginx.Echo("[$t2]")}}
                }
            }
            """);
    }

    protected override async Task OnStopping() => await _sts.DisposeAsync();

    private static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N");

    private static string Target(string source) => "[" + WsTrustTokens.BinaryValue(source, WsTrustMode.Binary()) + "]";

    /// <summary>Asserts the exchange happened once with <paramref name="valueType"/> and delivered the target.</summary>
    private async Task AssertExchangedAsync(string path, string valueType)
    {
        string source = Unique("merge-");

        HttpReply reply = await Nginx.GetAsync(path, source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo(Target(source)));
        WsTrustRequest call = _sts.Requests.Single(r => r.SourceToken == source);
        Assert.That(call.SourceTokenValueType, Is.EqualTo(valueType), "whose exchange it was");
    }

    /// <summary>Asserts the request passed without an exchange (no STS call, empty target).</summary>
    private async Task AssertNotExchangedAsync(string path)
    {
        string source = Unique("merge-off-");

        HttpReply reply = await Nginx.GetAsync(path, source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("[]"));
        Assert.That(_sts.Calls(source), Is.Zero);
    }

    [TestCase("/later/x", "urn:parent-later", TestName = "Location_with_STSExchange_exchanges")]
    [TestCase("/later/child/x", "urn:parent-later", TestName = "Nested_location_inherits_the_parents_STSExchange")]
    [TestCase("/later/child/grandchild/x", "urn:parent-later", TestName = "Location_nested_twice_inherits_the_STSExchange")]
    [TestCase("/later/x?if=1", "urn:parent-later", TestName = "If_block_inherits_the_locations_STSExchange")]
    [TestCase("/later/own-seed/x", "urn:child-seed", TestName = "Nested_STSType_replaces_the_parents_STSExchange")]
    [TestCase("/later/off-then-on/on/x", "urn:grandchild", TestName = "Exchange_below_a_disabled_location_is_on_again")]
    [TestCase("/seed/x", "urn:parent-seed", TestName = "Location_with_STSType_exchanges")]
    [TestCase("/seed/child/x", "urn:parent-seed", TestName = "Nested_location_inherits_the_parents_STSType")]
    [TestCase("/seed/x?if=1", "urn:parent-seed", TestName = "If_block_inherits_the_locations_STSType")]
    [TestCase("/seed/own-later/x", "urn:child-later", TestName = "Nested_STSExchange_replaces_the_parents_STSType")]
    [TestCase("/seed/own-value-type/x", "urn:child-value-type", TestName = "Nested_seed_directive_overrides_the_parents_value")]
    public Task Exchanged(string path, string valueType) => AssertExchangedAsync(path, valueType);

    [TestCase("/later/exchange-off/x", TestName = "Nested_STSExchange_disabled_turns_off_the_parents_STSExchange")]
    [TestCase("/later/type-off/x", TestName = "Nested_STSType_disabled_turns_off_the_parents_STSExchange")]
    [TestCase("/later/off-then-on/x", TestName = "Disabled_location_with_an_enabled_child_stays_off")]
    [TestCase("/later/x?exchange_off=1", TestName = "If_block_with_STSExchange_disabled_turns_it_off")]
    [TestCase("/later/x?type_off=1", TestName = "If_block_with_STSType_disabled_turns_off_an_STSExchange")]
    [TestCase("/seed/type-off/x", TestName = "Nested_STSType_disabled_turns_off_the_parents_STSType")]
    [TestCase("/seed/exchange-off/x", TestName = "Nested_STSExchange_disabled_turns_off_the_parents_STSType")]
    [TestCase("/seed/x?type_off=1", TestName = "If_block_with_STSType_disabled_turns_off_an_STSType")]
    public Task Not_exchanged(string path) => AssertNotExchangedAsync(path);

    [Test]
    public async Task Inherited_exchange_without_a_source_token_is_401()
    {
        int before = _sts.Count;

        HttpReply child = await Nginx.GetAsync("/later/child/x");
        HttpReply inIf = await Nginx.GetAsync("/seed/x?if=1");

        Assert.That(child.Status, Is.EqualTo(401));
        Assert.That(inIf.Status, Is.EqualTo(401));
        Assert.That(_sts.Count, Is.EqualTo(before));
    }
}
