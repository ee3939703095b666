package updates

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"switchyard/internal/httpapi"
	"switchyard/rollout"
	"switchyard/store"
)

// The rollouts API.

// maxSpecBody bounds the body of POST /api/rollouts: room for the ids of
// 10,000 boards.
const maxSpecBody = 1 << 20

// errTags is the answer to a tag target when Config.Tags is nil.
var errTags = errors.New("target: tags are not available here; target all boards, a group or ids")

func (s *Service) createRollout(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSpecBody+1))
	if err != nil {
		httpapi.Error(w, http.StatusBadRequest, "reading the body: %v", err)
		return
	}
	if len(body) > maxSpecBody {
		httpapi.Error(w, http.StatusRequestEntityTooLarge, "body over %d bytes", maxSpecBody)
		return
	}
	spec, err := rollout.ParseSpec(body)
	if err != nil {
		httpapi.Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	if s.cfg.PublicURL == "" && s.cfg.BoardAddr == nil {
		httpapi.Error(w, http.StatusBadRequest, "http.public_url: required to start a rollout with an external broker (it is the URL boards download the build from)")
		return
	}
	ids, err := s.targets(spec.Target)
	if err != nil {
		httpapi.Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	ctx := r.Context()
	s.createMu.Lock()
	defer s.createMu.Unlock()
	fw, err := s.cfg.Store.Firmware(ctx, spec.Firmware)
	if errors.Is(err, store.ErrNotFound) {
		httpapi.Error(w, http.StatusBadRequest, "firmware: %s is no uploaded build (POST /api/firmware first)", spec.Firmware)
		return
	}
	if err != nil {
		httpapi.Error(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if board, other := s.inRollout(ids); other != "" {
		httpapi.Error(w, http.StatusConflict, "board %s is in rollout %s, which is not finished: one board is in one rollout at a time (abort %s or wait for it)", board, other, other)
		return
	}
	now := s.cfg.Now()
	ro := rollout.Plan(newID(now), spec, fw, s.fleet.candidates(ids), now)
	if err := s.cfg.Store.CreateRollout(ctx, ro); err != nil {
		httpapi.Error(w, http.StatusInternalServerError, "%v", err)
		return
	}
	// Saved by CreateRollout (version 1 saved), not yet announced.
	e := &entry{r: ro, fw: fw, version: 1, saved: 1, lastSave: now}
	s.mu.Lock()
	s.rollouts = slices.Insert(s.rollouts, 0, e)
	s.byID[ro.ID] = e
	out, err := json.Marshal(ro)
	s.mu.Unlock()
	s.poke() // steps it at once: the first jobs go out, browsers hear of it
	if err != nil {
		httpapi.Error(w, http.StatusInternalServerError, "%v", err)
		return
	}
	setAuditTarget(r, ro.ID)
	s.log.Info("rollout created", "rollout", ro.ID, "firmware", fw.SHA256, "version", fw.Version, "state", ro.State, "boards", len(ids))
	httpapi.WriteRaw(w, http.StatusCreated, out)
}

// targets returns the ids a rollout target names, sorted, each once.
func (s *Service) targets(t rollout.Target) ([]string, error) {
	var ids []string
	switch {
	case t.All:
		ids = s.fleet.known()
	case t.Group != "":
		if t.Group == "all" {
			ids = s.fleet.known()
			break
		}
		g, ok := s.cfg.Groups[t.Group]
		if !ok {
			return nil, fmt.Errorf("target: no group %q (groups come from the config file's groups)", t.Group)
		}
		ids = slices.Clone(g)
	case t.Tag != "":
		if s.cfg.Tags == nil {
			return nil, errTags
		}
		if ids = slices.Clone(s.cfg.Tags(t.Tag)); len(ids) == 0 {
			return nil, fmt.Errorf("target: no board has tag %q", t.Tag)
		}
	default:
		ids = slices.Clone(t.IDs)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// inRollout returns a board of ids that is in a rollout not finished, and
// that rollout's id; "" when none is. A board skipped by a rollout was
// never in it. createMu is held.
func (s *Service) inRollout(ids []string) (board, other string) {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.rollouts {
		if e.r.State.Finished() {
			continue
		}
		for _, w := range e.r.Waves {
			for _, b := range w.Boards {
				if want[b.ID] && b.State != rollout.BoardSkipped {
					return b.ID, e.r.ID
				}
			}
		}
	}
	return "", ""
}

// newID makes a rollout id: the time it was made and a random suffix,
// sortable and safe in a path and a job id.
func newID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b) // crypto/rand never fails
	return now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

func (s *Service) listRollouts(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := make([]*rollout.Rollout, len(s.rollouts))
	for i, e := range s.rollouts {
		out[i] = e.r
	}
	j, err := json.Marshal(out) // under mu: the engine changes them
	s.mu.Unlock()
	if err != nil {
		httpapi.Error(w, http.StatusInternalServerError, "%v", err)
		return
	}
	httpapi.WriteRaw(w, http.StatusOK, j)
}

func (s *Service) getRollout(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	e := s.byID[id]
	var j []byte
	var err error
	if e != nil {
		j, err = json.Marshal(e.r)
	}
	s.mu.Unlock()
	switch {
	case e == nil:
		httpapi.Error(w, http.StatusNotFound, "rollout %q: no such rollout", id)
	case err != nil:
		httpapi.Error(w, http.StatusInternalServerError, "%v", err)
	default:
		httpapi.WriteRaw(w, http.StatusOK, j)
	}
}

// actRollout is POST /api/rollouts/<id>/pause, /resume and /abort. The
// primary applies it; another control plane queues it for the primary
// and waits for its answer (see cluster.go): 202 with the rollout as it
// will be when no primary answered within askWait.
func (s *Service) actRollout(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	if actionOf(action) == nil {
		httpapi.Error(w, http.StatusNotFound, "POST %s: not found (pause, resume or abort)", r.URL.Path)
		return
	}
	var j []byte
	var state rollout.State
	status := http.StatusOK
	var err error
	if s.isPrimary() {
		var e *entry
		if e, err = s.act(id, action); err == nil {
			s.mu.Lock()
			j, err = json.Marshal(e.r)
			state = e.r.State
			s.mu.Unlock()
		}
	} else {
		var ro *rollout.Rollout
		var answered bool
		if ro, answered, err = s.ask(r.Context(), id, action); err == nil {
			j, err = json.Marshal(ro)
			state = ro.State
			if !answered {
				status = http.StatusAccepted
			}
		}
	}
	switch {
	case errors.Is(err, errNoRollout):
		httpapi.Error(w, http.StatusNotFound, "rollout %q: no such rollout", id)
	case errors.Is(err, rollout.ErrState):
		httpapi.Error(w, http.StatusConflict, "%v", err)
	case err != nil:
		httpapi.Error(w, http.StatusInternalServerError, "%v", err)
	default:
		s.log.Info("rollout "+action, "rollout", id, "state", state, "queued", status == http.StatusAccepted)
		httpapi.WriteRaw(w, status, j)
	}
}
