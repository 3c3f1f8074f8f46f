/// <reference types="vitest/config" />
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The bundle is served by Django from builder_ui/static/builder_ui/ and committed,
// so file names must be stable (no content hashes) and the output a single JS + CSS pair.
const outDir = fileURLToPath(new URL("../static/builder_ui/", import.meta.url));

export default defineConfig({
  plugins: [react()],
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
