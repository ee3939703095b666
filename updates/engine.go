package updates

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"switchyard/devices"
	"switchyard/rollout"
)

// The engine: one goroutine that steps the rollouts, publishes their jobs,
// saves them and tells browsers. It wakes on Ingest's pokes (a board came,
// went, changed its info or reported an update), on the HTTP handlers'
// (a rollout was created, paused, resumed or aborted), on a ticker (health
// windows and timeouts pass without any message) and when a save or a
// broadcast held back by saveEvery or broadcastEvery is due.

// job is one update/set to publish.
type job struct {
	e       *entry
	send    rollout.Send
	version uint64 // e's version that records it: sent only once that is saved
}

// run is the engine's loop; it returns when Close closes quit, after a
// last save of whatever was held back.
func (s *Service) run() {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.StepInterval)
	defer tick.Stop()
	later := time.NewTimer(time.Hour)
	later.Stop()
	defer later.Stop()
	gap := time.NewTimer(time.Hour)
	gap.Stop()
	defer gap.Stop()
	for {
		select {
		case <-s.quit:
			s.flush(s.cfg.Now(), true)
			return
		case <-s.kick:
		case <-tick.C:
		case <-later.C:
		}
		if wait := s.cycle(); wait > 0 {
			later.Reset(wait)
		}
		// Nothing starts the next cycle within cycleGap: pokes that come
		// meanwhile wait for it together (one pending kick is kept).
		gap.Reset(cycleGap)
		select {
		case <-s.quit:
			s.flush(s.cfg.Now(), true)
			return
		case <-gap.C:
		}
	}
}

// cycleGap is the least time between two cycles of the engine. A wave of
// 900 boards reports some thousand updates a second (download progress,
// verifying, restarting, the new build's info); a cycle for each steps every
// board of every rollout, which bench/rollout.sh measured at 0.9 CPU
// seconds in 8 s of a 1,000-board wave, all of it taken from the live path
// on the same cores. Stepping at most 50 times a second reads the same
// reports a few milliseconds later: nothing a rollout decides (health
// windows, timeouts, all in seconds) notices.
const cycleGap = 20 * time.Millisecond

// cycle steps every rollout that has something to follow, saves, sends
// and broadcasts; it returns how long until a held-back save or broadcast
// is due (0: none is).
func (s *Service) cycle() time.Duration {
	now := s.cfg.Now()
	if !s.lead() {
		s.follow(now)
		return s.flush(now, false) // broadcasts what changed; saves nothing
	}
	s.pickUp(now)
	var jobs []job
	throttled := false
	s.mu.Lock()
	for _, e := range s.rollouts {
		if !active(e.r) {
			continue
		}
		before, state := e.r.Updated, e.r.State
		e.r.MaxFetching = 2 * s.cfg.MaxDownloads // see Config.MaxDownloads
		e.r.SendRate = s.cfg.JobRate
		sends := e.r.Step(s.fleet, now)
		throttled = throttled || e.r.Throttled // step again when the next board may start
		if len(sends) > 0 || !e.r.Updated.Equal(before) || e.r.State != state {
			e.changed(len(sends) > 0 || e.r.State != state)
		}
		if e.r.State != state {
			e.castNow = true
			s.log.Info("rollout "+string(e.r.State), "rollout", e.r.ID, "reason", e.r.Reason)
		}
		for _, snd := range sends {
			jobs = append(jobs, job{e, snd, e.version})
		}
	}
	s.mu.Unlock()
	// Saved before they are sent: see saveEvery. A job whose record was
	// not saved is not sent (Step sends it again after ResendAfter), nor
	// is one of a control plane that is no longer the primary: the new
	// one reads the record and the board's update state.
	wait := s.flush(now, false)
	for _, j := range jobs {
		s.mu.Lock()
		saved := j.e.saved >= j.version
		s.mu.Unlock()
		if !saved || !s.isPrimary() {
			s.log.Warn("update job not sent: its record is not saved, or this control plane is no longer the primary",
				"rollout", j.e.r.ID, "device", j.send.ID, "job", j.send.Job, "saved", saved)
			continue
		}
		s.publish(j)
	}
	if next := time.Duration(float64(time.Second) / s.cfg.JobRate); throttled && (wait == 0 || next < wait) {
		wait = next
	}
	return wait
}

// active reports whether a rollout has anything left to do or follow: it
// is not finished, or boards are still updating in it.
func active(r *rollout.Rollout) bool {
	if r.State == rollout.Done {
		return false
	}
	return !r.State.Finished() || r.Counts[rollout.BoardUpdating]+r.Counts[rollout.BoardChecking] > 0
}

// flush saves the rollouts whose changes are due to be saved (all of them
// when force) and broadcasts those due to be announced. It returns how
// long until the next held-back one is due, 0 when none is held back.
func (s *Service) flush(now time.Time, force bool) time.Duration {
	var save []*entry
	var casts [][]byte
	var wait time.Duration
	due := func(last time.Time, every time.Duration) (bool, time.Duration) {
		left := every - now.Sub(last)
		return left <= 0, left
	}
	s.mu.Lock()
	for _, e := range s.rollouts {
		if e.version != e.saved && s.primary { // a follower saves nothing: its changes are reloads
			if ok, left := due(e.lastSave, saveEvery); ok || force || e.urgent {
				save = append(save, e)
			} else if wait == 0 || left < wait {
				wait = left
			}
		}
		if e.version != e.announced {
			if ok, left := due(e.lastCast, e.castPause); ok || force || e.castNow {
				ev := rolloutEvent(e.r)
				casts = append(casts, ev)
				e.announced, e.lastCast, e.castPause, e.castNow = e.version, now, castPause(len(ev)), false
			} else if wait == 0 || left < wait {
				wait = left
			}
		}
	}
	s.mu.Unlock()
	for _, e := range save {
		if err := s.persist(e); err != nil {
			s.log.Error("save rollout", "err", err) // tried again at the next cycle
			if wait == 0 || saveEvery < wait {
				wait = saveEvery
			}
		}
	}
	if b := s.cfg.Broadcaster; b != nil {
		for _, ev := range casts {
			b.Broadcast(ev)
		}
	}
	return wait
}

// persist saves e's rollout as it is now, unless that version is saved
// already. Saves are ordered by saveMu, so none overwrites a newer one.
func (s *Service) persist(e *entry) error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	if e.version == e.saved {
		s.mu.Unlock()
		return nil
	}
	v, r := e.version, cloneInto(e.saving, e.r)
	e.saving = r
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.cfg.Store.SaveRollout(ctx, r)
	s.mu.Lock()
	defer s.mu.Unlock()
	e.lastSave = s.cfg.Now()
	if err != nil {
		return err
	}
	e.saved = v
	if e.version == v {
		e.urgent = false
	}
	return nil
}

// publish sends one job to its board: update/set, QoS 1, not retained.
func (s *Service) publish(j job) {
	s.mu.Lock()
	fw := j.e.fw
	s.mu.Unlock()
	log := s.log.With("rollout", j.e.r.ID, "device", j.send.ID, "job", j.send.Job)
	if fw.SHA256 == "" {
		log.Error("update job not sent: the rollout's firmware could not be read")
		return
	}
	url, err := s.jobURL(j.send.ID, fw.SHA256)
	if err != nil {
		log.Error("update job not sent", "err", err)
		return
	}
	cmd := devices.UpdateCommand{
		Job: j.send.Job, Version: fw.Version, URL: url, SHA256: fw.SHA256, Size: fw.Size,
		Signature: base64.StdEncoding.EncodeToString(fw.Signature),
	}
	if err := s.cfg.Publisher.Publish(s.cfg.Topics.UpdateSet(j.send.ID), cmd.AppendJSON(nil), false, 1); err != nil {
		log.Error("update job not sent", "err", err)
		return
	}
	log.Info("update job sent", "version", fw.Version, "url", url)
}

// errNoURL says why no download URL can be made.
var errNoURL = errors.New("http.public_url is empty and the board's MQTT connection is not known here")

// jobURL is where board id downloads the build sha: http.public_url +
// /firmware/<sha> when set, else the HTTP listener's scheme and port at
// the address the board reached the broker at.
func (s *Service) jobURL(id, sha string) (string, error) {
	const path = "/firmware/"
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL + path + sha, nil
	}
	if s.cfg.BoardAddr == nil || s.cfg.HTTPPort == 0 {
		return "", errNoURL
	}
	addr, ok := s.cfg.BoardAddr(id)
	if !ok {
		return "", fmt.Errorf("board %s: %w", id, errNoURL)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("board %s: local address %q: %w", id, addr, err)
	}
	return s.cfg.HTTPScheme + "://" + net.JoinHostPort(host, strconv.Itoa(s.cfg.HTTPPort)) + path + sha, nil
}

// rolloutEvent is the /ws event of a rollout: {"event":"rollout",…the
// rollout's JSON…}. mu is held.
func rolloutEvent(r *rollout.Rollout) []byte {
	j, err := json.Marshal(r)
	if err != nil || len(j) < 2 {
		return nil // a Rollout always marshals
	}
	return append([]byte(`{"event":"rollout",`), j[1:]...)
}

// Snapshot returns the events of the rollouts not finished, newest first,
// for a browser that connects.
func (s *Service) Snapshot() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, e := range s.rollouts {
		if !e.r.State.Finished() {
			out = append(out, rolloutEvent(e.r))
		}
	}
	return out
}

// cloneRollout copies r deeply enough to be read while r changes: its
// waves, their boards and its counts (the spec is never changed).
func cloneRollout(r *rollout.Rollout) *rollout.Rollout { return cloneInto(nil, r) }

// cloneInto is cloneRollout into c's memory (nil: new), so that a
// rollout saved at every job it sends (dozens of times a second while a
// large wave starts) is not copied into a new array of every board each
// time. Nothing may read c while it is overwritten.
func cloneInto(c, r *rollout.Rollout) *rollout.Rollout {
	if c == nil {
		c = &rollout.Rollout{}
	}
	waves, counts := c.Waves, c.Counts
	*c = *r
	if cap(waves) < len(r.Waves) {
		waves = append(waves[:cap(waves)], make([]rollout.Wave, len(r.Waves)-cap(waves))...)
	}
	waves = waves[:len(r.Waves)]
	for i, w := range r.Waves {
		boards := waves[i].Boards
		waves[i] = w
		waves[i].Boards = append(boards[:0], w.Boards...)
	}
	c.Waves = waves
	if r.Waves == nil {
		c.Waves = nil // as the source: its JSON is null, not []
	}
	if counts == nil {
		counts = make(map[rollout.BoardState]int, len(r.Counts))
	}
	clear(counts)
	for k, v := range r.Counts {
		counts[k] = v
	}
	c.Counts = counts
	return c
}
