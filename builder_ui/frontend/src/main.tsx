// Entry point: mounts the builder on #builder-root, configured by its data attributes.
import "@xyflow/react/dist/style.css";
import "./styles.css";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App, type BuilderConfig } from "./App";
import { createApi } from "./api";

function csrfFromCookie(): string {
  const match = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie);
  return match ? decodeURIComponent(match[1]) : "";
}

function mount() {
  const root = document.getElementById("builder-root");
  if (!root) return;
  const data = root.dataset;
  const config: BuilderConfig = {
    // Tolerate a template that renders a missing id as "None" or "null".
    workflowId: /^\d+$/.test(data.workflowId?.trim() ?? "") ? data.workflowId!.trim() : null,
    apiBase: data.apiBase || "/api/",
    csrfToken: data.csrfToken || csrfFromCookie(),
    adminUrl: data.adminUrl || "/admin/workflows/workflow/",
    runsUrl: data.runsUrl || "/admin/runs/workflowrun/",
  };
  const api = createApi(config.apiBase, config.csrfToken);
  createRoot(root).render(
    <StrictMode>
      <App config={config} api={api} />
    </StrictMode>,
  );
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
else mount();
