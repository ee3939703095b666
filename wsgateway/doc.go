// Package wsgateway serves browsers: the dashboard, the WebSocket endpoints
// /ws and /ws/<id>, the REST API, /healthz and /metrics.
//
// Board messages arrive through Ingest (from the broker's inline
// subscription, on the publishing client's goroutine); Ingest only queues
// them. One loop goroutine applies them to the fleet state and fans the
// resulting events out to every browser: each batch of events is encoded
// once and handed to every browser's bounded queue as one shared chunk, so
// fan-out costs one append per browser per batch. Each browser has one
// reader goroutine (reader.go: frames are parsed here, gorilla/websocket
// only does the handshake). Writing is a role a browser's writer holds
// while it has something to send: a turn of a pool worker (one per CPU,
// non-blocking writes) or, when its socket is full or the round is large,
// a goroutine of its own until it has caught up (writer.go); either way
// everything queued goes out as one frame (a JSON array). A browser whose
// queue overflows is dropped and never slows the others, the loop or the
// broker.
//
// Lock order: Gateway.mu, then client.mu, then readyQueue.mu. Gateway.inMu
// is taken alone.
package wsgateway
