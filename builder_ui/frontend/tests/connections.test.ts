import { describe, expect, it } from "vitest";
import { createApi } from "../src/api";
import { connectionOptions, hasConnectionInput, parseAccounts } from "../src/connections";

const github = { name: "github.create_issue", family: "github" };
const http = { name: "http.request", family: "http" };
const slack = { name: "slack.post_message", family: "slack" };

describe("connected accounts", () => {
  const today = [
    { id: 1, provider: "github", login: "octocat", scopes: ["repo"], status: "ok", connect_url: "/oauth/login/github/" },
    { id: 2, provider: "github", login: "hubot", status: "needs_reauth" },
    { id: 3, provider: "slack", login: "acme-bot", status: "ok" },
  ];

  it("reads today's list and the shapes the generalised endpoint may take", () => {
    const expected = parseAccounts(today);
    expect(expected.map((a) => `${a.provider}:${a.login}`)).toEqual(["github:octocat", "github:hubot", "slack:acme-bot"]);
    expect(parseAccounts({ results: today })).toEqual(expected);
    expect(parseAccounts({ accounts: today })).toEqual(expected);
    expect(parseAccounts([{ provider: { name: "github", id: 7 }, login: "octocat", id: 1 }])[0].provider).toBe("github");
    expect(parseAccounts({ providers: [{ name: "slack", accounts: [{ id: 3, login: "acme-bot" }] }] })).toEqual([
      { id: "3", provider: "slack", login: "acme-bot", status: "ok" },
    ]);
  });

  it("skips what it cannot read instead of failing", () => {
    expect(parseAccounts(null)).toEqual([]);
    expect(parseAccounts("oops")).toEqual([]);
    expect(parseAccounts({ detail: "Authentication credentials were not provided." })).toEqual([]);
    expect(parseAccounts([null, 3, { id: 4 }, { provider: "github" }])).toEqual([]);
  });

  it("offers a provider's own actions its accounts by login, flagging one that needs reconnecting", () => {
    const options = connectionOptions(parseAccounts(today), github);
    expect(options.map((o) => o.value)).toEqual(["hubot", "octocat"]);
    expect(options[0].needsReauth).toBe(true);
    expect(options[0].label).toContain("needs reconnecting");
    expect(connectionOptions(parseAccounts(today), slack).map((o) => o.value)).toEqual(["acme-bot"]);
  });

  it("offers http.request every account as provider:login", () => {
    expect(connectionOptions(parseAccounts(today), http).map((o) => o.value)).toEqual([
      "github:hubot", "github:octocat", "slack:acme-bot",
    ]);
  });

  it("does not offer another provider's accounts to a provider's action", () => {
    const onlySlack = parseAccounts([{ id: 3, provider: "slack", login: "acme-bot" }]);
    expect(connectionOptions(onlySlack, github)).toEqual([]);
  });

  it("knows which actions take a connection", () => {
    expect(hasConnectionInput({ type: "object", properties: { url: {}, connection: { type: "string" } } })).toBe(true);
    expect(hasConnectionInput({ type: "object", properties: { url: {} } })).toBe(false);
    expect(hasConnectionInput(undefined)).toBe(false);
  });

  it("is fetched from /api/connections/ and secret names from /api/secrets/", async () => {
    const urls: string[] = [];
    const fake = (async (url: string) => {
      urls.push(url);
      const body = url.endsWith("secrets/")
        ? [{ name: "API_KEY", created_at: "x" }, { name: "bad name" }]
        : { results: today };
      return new Response(JSON.stringify(body), { status: 200 });
    }) as unknown as typeof fetch;
    const api = createApi("/api/", "t", fake);
    expect((await api.listConnections()).length).toBe(3);
    expect(await api.listSecretNames()).toEqual(["API_KEY"]);
    expect(urls).toEqual(["/api/connections/", "/api/secrets/"]);
  });
});
