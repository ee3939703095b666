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
// Downloads are shared: every job that wants the same SHA-256 waits for
// one download, streamed to a file in the state directory and hashed while
// it is read, so a thousand simulated boards fetching one build hold no
// copy of it in memory.
package update
