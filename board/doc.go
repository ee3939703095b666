// Package board is the Switchyard board firmware core: the behaviour of one
// board, written once and reused by every target (simulated boards, Linux
// boards with GPIO, ESP32 under TinyGo).
//
// A Board talks to the world only through the small interfaces declared
// here: an LED output, an MQTT Session, a Clock, a Logger and, for boards
// that update themselves, an Updater. It imports nothing but a few
// TinyGo-safe standard packages and switchyard/devices (the wire contract
// as code), and it has no build tags.
//
// What a board does, per the wire contract:
//
//   - it connects with a Last Will of status "offline" (QoS 1, retained);
//   - after every (re)connect it subscribes to led/set, update/set and
//     its own status, waits for the SUBACKs, then publishes status
//     "online", its info and its led state (QoS 1, retained);
//   - while connected it answers an "offline" on its own status (a late
//     Last Will of an older session) with "online" again;
//   - every interval it publishes count (QoS 0, not retained), 0 first; the
//     count runs on across reconnects and restarts only at boot;
//   - it applies ON, OFF and TOGGLE in any case and publishes the resulting
//     led state, also when unchanged; garbage and retained copies of
//     commands are logged and ignored;
//   - it reconnects with capped exponential backoff and full jitter;
//     given several brokers it fails over to the next one at once and
//     backs off only after a whole round failed (rotation.go);
//   - when its context is cancelled it publishes status "offline" and
//     disconnects cleanly;
//   - it takes update jobs on update/set and reports on update (see
//     update.go): with no Updater it answers every job failed,
//     "unsupported"; with one, the work runs on a goroutine of its own
//     while the board goes on counting and obeying, and a job that needs
//     the next build ends Run with a *HandOver for its caller to start it.
//
// What is specific to an operating system (processes, files, HTTP) stays
// out of this package: board/update implements the updaters for Linux
// and for simulated boards.
package board
