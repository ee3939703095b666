package history

import (
	"time"
)

// Kind is what a board's history event says, as the API names it.
type Kind string

// The event kinds of the contract.
const (
	KindOnline    Kind = "online"    // the board connected
	KindOffline   Kind = "offline"   // Value says why: OfflineWill, OfflineClean, OfflineRestart or OfflineSilent
	KindLED       Kind = "led"       // Value "ON" or "OFF"
	KindCommand   Kind = "command"   // Value the command and its outcome: "TOGGLE applied"
	KindUpdate    Kind = "update"    // Value the update state, with the version or error where there is one
	KindInfo      Kind = "info"      // Value what changed: "firmware 1.2.0", "platform linux-arm64"
	KindForgotten Kind = "forgotten" // the board was forgotten
)

// Why a board went offline.
const (
	OfflineWill    = "will"    // its Last Will: the connection was lost
	OfflineClean   = "clean"   // it said goodbye (an offline status, then disconnect)
	OfflineRestart = "restart" // the control plane restarted while it was online
	OfflineSilent  = "silent"  // nothing came from it for too long (external broker mode)
)

// ByBoard is Event.By for what the board did of itself (a button, a boot).
const ByBoard = "board"

// ByMQTT is Event.By for an MQTT client: mqtt:<user> for one that logged
// in, mqtt:<client id> for an anonymous one.
func ByMQTT(user, clientID string) string {
	if user != "" {
		return "mqtt:" + user
	}
	return "mqtt:" + clientID
}

// Event is one event of a board's history.
type Event struct {
	At     time.Time
	Device string
	Kind   Kind
	Value  string
	By     string // who caused it, where known; empty otherwise
}

// Point is a board's count sampled once a step: the last count seen in the
// step starting at At.
type Point struct {
	Device string
	At     time.Time // the start of the step
	Count  int64
}

// Action is what an audit entry records.
type Action string

// The audit actions of the contract.
const (
	ActionLogin          Action = "login"
	ActionLogout         Action = "logout"
	ActionCommand        Action = "command"
	ActionForget         Action = "forget"
	ActionRename         Action = "rename"
	ActionRetag          Action = "retag"
	ActionFirmwareUpload Action = "firmware-upload"
	ActionFirmwareDelete Action = "firmware-delete"
	ActionRolloutStart   Action = "rollout-start"
	ActionRolloutPause   Action = "rollout-pause"
	ActionRolloutResume  Action = "rollout-resume"
	ActionRolloutAbort   Action = "rollout-abort"
	ActionUserCreate     Action = "user-create"
	ActionUserChange     Action = "user-change"
	ActionUserDelete     Action = "user-delete"
	ActionBoardCreate    Action = "board-create"
	ActionTokenCreate    Action = "token-create"
	ActionTokenDelete    Action = "token-delete"
)

// Result is how an audited action ended.
type Result string

// The audit results of the contract.
const (
	ResultOK     Result = "ok"
	ResultDenied Result = "denied" // not allowed (role, credentials)
	ResultFailed Result = "failed" // allowed, but it did not work
)

// Entry is one line of the audit log.
type Entry struct {
	At     time.Time
	Actor  string // the user name; for a failed login, the name tried
	Action Action
	Target string // what it acted on: a board id, a rollout, a firmware; may be empty
	Result Result
	Remote string // the client's address, where there is one
}
