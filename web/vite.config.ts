import { defineConfig } from "vite";

// Preact's automatic JSX runtime, without a Babel preset: vite's own
// transform reads jsxImportSource from tsconfig.json.
export default defineConfig({
  build: {
    target: "es2022",
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
  },
  // `npm run dev` proxies the API to a running `make dev`.
  server: {
    proxy: {
      "/api": "http://127.0.0.1:3000",
      "/config.json": "http://127.0.0.1:3000",
      "/local": "http://127.0.0.1:3000",
    },
  },
});
