// Package wsgateway serves browsers: the dashboard, the WebSocket endpoints
// /ws and /ws/<id>, the REST API, /healthz and /metrics, and the routes
// other packages mount behind the same access rules (Config.Routes,
// mounted.go: the update service's firmware and rollout API).
//
// Board messages arrive through Ingest (from the broker's inline
// subscription, on the publishing client's goroutine); Ingest only queues
// them (ingest.go), and so does Broadcast with other packages' events
// (broadcast.go). One loop goroutine applies them to the fleet state
// (loop.go) and fans the resulting events out to every browser: each batch
// is encoded once and handed to every browser's bounded queue as one
// shared chunk, so fan-out costs one append per browser per batch
// (fanout.go). Each browser has one reader goroutine (client.go; frames
// are parsed by reader.go, gorilla/websocket only does the handshake in
// hub.go). A browser whose queue overflows is dropped and never slows the
// others, the loop or the broker.
//
// # Who writes to a browser, and when
//
// Writing is a role, held by one goroutine at a time while the browser
// has something to send and by nobody otherwise, so an idle browser costs
// its reader alone. Only the role's holder writes to the socket, so frames
// never interleave; whatever is queued when it writes goes out as one
// round: a pong, a ping, then every queued event in one frame (a JSON
// array when there are several; one frame per event on /ws/<id>).
//
//	loop, fanOut (Broadcast too) ...... client.enqueue  \
//	pinger, every PingInterval ........ client.ping      \  each queues its part under client.mu
//	reader, on the browser's ping ..... client.pong      /  and, if nobody holds the writer role,
//	logout, forget, Close, reader ..... client.close    /   takes it (startWriter):
//	                                          |
//	                                          v
//	                                  +-------------+
//	                                  | ready queue |  FIFO, a browser in it at most once
//	                                  +-------------+
//	                                          | pop
//	                                          v
//	pool worker (one per CPU): one round per turn, encoded into the worker's
//	buffer, one non-blocking write(2), then runtime.Gosched
//	    | all written, more queued ......... back of the ready queue
//	    | all written, nothing queued ...... role given up (idle)
//	    | closed ........................... close frame, socket closed
//	    | partial write, or round > 16 KiB
//	    v
//	the browser's own goroutine (writeAlone): the rest of the frames (within
//	WriteWait; a close frame within closeWait), then round after round,
//	waiting, streamed through 16 KiB, until nothing is queued: role given
//	up. A TLS connection has no non-blocking write: it always writes here.
//
//	client.abort (a failed or silent connection), and enqueue dropping a
//	slow browser, close the socket at once from any goroutine, without a
//	close frame: a write in progress fails, and its writer finishes.
//
// Why a pool: a fan-out to a thousand browsers is a thousand frame writes.
// Started as a thousand goroutines they fill the run queues, and
// everything else (the toggle on its way to its board) waits behind them:
// on two cores that was up to 8 ms for a toggle to reach its board. A
// frame the kernel takes at once (a few hundred bytes into a socket buffer
// of hundreds of KiB, the usual case) costs a worker one system call and
// no goroutine; the pool never waits for one browser. (bench/README.md,
// "Writer pool", has the figures.)
//
// # A browser's states
//
// Two flags under client.mu, writing and closed, and the close frame to
// send (closeMsg):
//
//	idle     not writing, not closed: the reader alone; nothing queued
//	writing  not closed; the role is in the ready queue, in a pool turn or
//	         in writeAlone (where is not stored: it is who holds it)
//	closing  closed, writing: the writer sends closeMsg (nil after abort,
//	         or once taken), then closes the socket and gives up the role
//	done     closed, not writing (the socket is closed); nothing starts a
//	         writer again, and the reader, its read failed, unregisters
//
// close goes from idle or writing to closing (taking the role if nobody
// holds it). abort, and enqueue dropping a slow browser, close the socket
// themselves: from idle to done, from writing to closing (the writer's
// next write fails or it finds closeMsg nil). A failed write goes to done.
//
// # Lock order
//
// Gateway.patchMu, then Gateway.mu, then client.mu, then readyQueue.mu.
// A PATCH holds patchMu while it waits for the loop (meta.go); the loop
// never takes it. tracker.mu, sessions.mu and rateLog.mu are taken under
// Gateway.mu or alone, and nothing under them; Gateway.inMu is taken
// alone.
package wsgateway
