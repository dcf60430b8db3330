// Package admin serves meshd's monitoring and debug HTTP endpoints (istiod's
// port 15014): /ready, /metrics and /debug/*. Paths and JSON shapes follow
// istiod's where the endpoint shares a name. Handlers only read state.
package admin
