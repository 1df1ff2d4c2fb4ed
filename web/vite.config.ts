import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// `npm run dev` serves the UI with hot reload and forwards the API (and its WebSocket) to a
// server on 127.0.0.1:9103 (`cargo run --release -- demo`). `npm run build` writes dist/, which
// the t3000 binary embeds.
const server = process.env.T3000_URL ?? 'http://127.0.0.1:9103'

export default defineConfig({
  plugins: [vue()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1024 },
  server: {
    proxy: {
      '/api': { target: server, ws: true },
      '/healthz': server,
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
})
