// The `connection` input as a picker of the caller's connected accounts (GET /api/connections/).
//
// The endpoint is being generalised from GitHub to any OAuth2 provider; both the bare list of
// `{"id", "provider", "login", "status"}` and wrapped or grouped shapes are read defensively.

import type { ActionInfo, JsonSchema } from "./api";

export interface Account {
  id: string;
  provider: string;
  login: string;
  status: string;
}

export interface ConnectionOption {
  value: string;
  label: string;
  needsReauth: boolean;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === "object" && !Array.isArray(v);

function text(value: unknown): string {
  if (typeof value === "string") return value.trim();
  if (typeof value === "number") return String(value);
  if (isObj(value)) return text(value.name ?? value.slug ?? value.id);
  return "";
}

function account(item: unknown, provider = ""): Account | null {
  if (!isObj(item)) return null;
  const p = text(item.provider) || text(item.provider_name) || provider;
  const login = text(item.login) || text(item.username) || text(item.name) || text(item.email);
  if (!p || !login) return null;
  return { id: text(item.id) || `${p}:${login}`, provider: p, login, status: text(item.status) || "ok" };
}

/** Accounts out of a list, `{results|accounts|connections: [...]}` or `{providers: [{name, accounts}]}`. */
export function parseAccounts(body: unknown): Account[] {
  if (Array.isArray(body)) {
    return body.flatMap((item) => {
      // A grouped entry: {"name"|"provider": "slack", "accounts": [...]}
      if (isObj(item) && Array.isArray(item.accounts)) return parseGroup(item);
      const a = account(item);
      return a ? [a] : [];
    });
  }
  if (!isObj(body)) return [];
  for (const key of ["results", "accounts", "connections", "providers"]) {
    if (Array.isArray(body[key])) return parseAccounts(body[key]);
  }
  return [];
}

function parseGroup(group: Obj): Account[] {
  const provider = text(group.provider) || text(group.name);
  return (group.accounts as unknown[]).flatMap((item) => {
    const a = account(item, provider);
    return a ? [a] : [];
  });
}

export function hasConnectionInput(schema: JsonSchema | undefined): boolean {
  return !!schema?.properties && "connection" in schema.properties;
}

/**
 * What a `connection` input of `action` may name. A provider's own actions (github.* for GitHub
 * accounts) take the account's login; generic ones (http.request, ...) take `<provider>:<login>`.
 */
// Families named after a provider: github.* with no GitHub account must not offer the owner's Slack accounts.
const PROVIDER_FAMILIES = new Set(["github", "slack", "google", "microsoft", "gitlab"]);

export function connectionOptions(accounts: Account[], action: ActionInfo | undefined): ConnectionOption[] {
  const family = action?.family ?? action?.name.split(".")[0] ?? "";
  const own = accounts.filter((a) => a.provider.toLowerCase() === family.toLowerCase());
  const chosen = own.length || PROVIDER_FAMILIES.has(family.toLowerCase()) ? own : accounts;
  const byLogin = own.length > 0;
  const options = chosen.map((a) => {
    const needsReauth = a.status !== "ok" && a.status !== "active" && a.status !== "connected";
    return {
      value: byLogin ? a.login : `${a.provider}:${a.login}`,
      label: `${a.login} (${a.provider})${needsReauth ? " - needs reconnecting" : ""}`,
      needsReauth,
    };
  });
  const seen = new Set<string>();
  return options
    .filter((o) => !seen.has(o.value) && seen.add(o.value))
    .sort((a, b) => a.value.localeCompare(b.value));
}

