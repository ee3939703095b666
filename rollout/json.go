package rollout

import (
	"encoding/json"
	"time"
)

// MarshalJSON writes r as the API and /ws show it:
//
//	{"id","firmware","version","platform","state","reason","created","updated",
//	 "waves":[{"size","state","boards":[{"id","state","error","job","update"}]}],
//	 "counts":{state:n},"health_window","max_failures","parallel","target"}
//
// with the times in RFC 3339 (UTC), health_window a Go duration ("1m0s"),
// max_failures a number or "N%", counts every state that at least one
// board is in (counted from the boards, so always in step with them) and
// every list present ([] when empty). Since and Jobs are not shown.
func (r Rollout) MarshalJSON() ([]byte, error) {
	waves := make([]Wave, len(r.Waves))
	for i, w := range r.Waves {
		if w.Boards == nil {
			w.Boards = []Board{}
		}
		waves[i] = w
	}
	r.Recount()
	return json.Marshal(struct {
		ID           string             `json:"id"`
		Firmware     string             `json:"firmware"`
		Version      string             `json:"version"`
		Platform     string             `json:"platform"`
		State        State              `json:"state"`
		Reason       string             `json:"reason"`
		Created      string             `json:"created"`
		Updated      string             `json:"updated"`
		Waves        []Wave             `json:"waves"`
		Counts       map[BoardState]int `json:"counts"`
		HealthWindow string             `json:"health_window"`
		MaxFailures  json.RawMessage    `json:"max_failures"`
		Parallel     int                `json:"parallel"`
		Target       Target             `json:"target"`
	}{
		r.ID, r.Firmware, r.Version, r.Platform, r.State, r.Reason,
		wireTime(r.Created), wireTime(r.Updated), waves, r.Counts,
		r.Spec.HealthWindow.String(), json.RawMessage(r.Spec.MaxFailures.String()), r.Spec.Parallel, r.Spec.Target,
	})
}

// wireTime writes t in RFC 3339, UTC, with as many fractional digits as it
// has.
func wireTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
