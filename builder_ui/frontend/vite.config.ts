/// <reference types="vitest/config" />
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import type { Plugin } from "vite";

// Django may serve the bundle without a charset, so keep it pure ASCII: escape every other
// character (\uXXXX is valid in JS strings, regexes and identifiers; \XXXXXX in CSS).
function asciiOnly(): Plugin {
  const hex = (c: string) => c.charCodeAt(0).toString(16);
  return {
    name: "flowforge-ascii-only",
    enforce: "post",
    generateBundle(_options, bundle) {
      for (const file of Object.values(bundle)) {
        if (file.type === "chunk") {
          file.code = file.code.replace(/[^\x00-\x7f]/g, (c) => `\\u${hex(c).padStart(4, "0")}`);
        } else if (file.fileName.endsWith(".css") && typeof file.source === "string") {
          file.source = file.source.replace(/[^\x00-\x7f]/g, (c) => `\\${hex(c).padStart(6, "0")}`);
        }
      }
    },
  };
}

// The bundle is served by Django from builder_ui/static/builder_ui/ and committed,
// so file names must be stable (no content hashes) and the output a single JS + CSS pair.
const outDir = fileURLToPath(new URL("../static/builder_ui/", import.meta.url));

export default defineConfig({
  plugins: [react(), asciiOnly()],
  base: "./",
  build: {
    outDir,
    emptyOutDir: true,
    cssCodeSplit: false,
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
    target: "es2020",
    rollupOptions: {
      input: fileURLToPath(new URL("./src/main.tsx", import.meta.url)),
      output: {
        // An IIFE works both as a classic <script defer> and as <script type="module">.
        format: "iife",
        entryFileNames: "builder.js",
        chunkFileNames: "builder-[name].js",
        assetFileNames: (asset) =>
          (asset.names ?? []).some((n) => n.endsWith(".css")) ? "builder.css" : "[name][extname]",
      },
    },
  },
  server: {
    // `npm run dev` against a local `manage.py runserver`.
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
  test: {
    include: ["tests/**/*.test.ts"],
    environment: "node",
  },
});
