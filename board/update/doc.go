// Package update makes devicefw boards update themselves over the air, per
// the wire contract's "Firmware updates (v2)": Binary, the updater of
// devicefw on Linux, which replaces its own executable pending-then-commit
// under the old build's supervision, and Sim, the updater of simulated
// boards (--sim), which download and verify for real and then restart
// their MQTT session announcing the new version.
//
// Both implement board.Updater for the board core, and both run a board's
// life across hand-overs: board.Board.Run returns a *board.HandOver when a
// job needs the next build, and Binary.Run and Sim.Run start it (a child
// process, or a new Board in the same process), supervise it and take the
// board back when it fails. What holds each guarantee of the contract is
// written where it holds, and in docs/devicefw.md.
//
// Binary's downloads are streamed to a file in the state directory and
// hashed while they are read, resuming with Range; jobs that want the same
// SHA-256 share one download. Each simulated board downloads for itself,
// hashing as the bytes come and keeping none of them.
package update
