package updates

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"switchyard/rollout"
	"switchyard/store"
)

// Several control planes on one database (Config.Role): the primary drives
// the rollouts as a control plane alone does; the others follow it.
//
// A follower steps nothing and saves nothing. Every pollEvery it reads the
// rollouts' stamps (their Updated) and reloads those that changed, so its
// API and its browsers show what the primary wrote, pollEvery late at
// most. A rollout created on a follower is written to the database at once
// (the follower plans it from its own view of the boards, which every
// control plane keeps from the broker); the primary picks it up at its
// next poll. Pause, resume and abort on a follower are queued in the
// database (rollout_requests); the primary applies them at its next poll
// and answers, and the follower answers its client once it has: one to
// two pollEvery later.
//
// A follower that becomes the primary reloads every rollout from the
// database (forgetting what it wrote itself: see store's SaveRollout) and
// goes on from there, as a control plane does after a restart: a board
// whose job was recorded has it (or is sent it again after
// rollout.ResendAfter, if it never reported on it, which happens only when
// the old primary died between saving the job and publishing it); every
// job is recorded before it is published.

// pollEvery is how often the primary looks for rollouts created and
// requests queued by the others, and a follower for what the primary
// changed.
const pollEvery = time.Second

// askWait bounds how long a follower waits for the primary's answer to a
// pause, resume or abort before it answers 202 (the request stays queued
// for whichever control plane becomes the primary).
const askWait = 5 * time.Second

// lead reports whether this control plane drives the rollouts now; the
// cycle in which it becomes the primary reloads them all first. A reload
// that fails leaves it a follower until the next cycle.
func (s *Service) lead() bool {
	p := s.isPrimary()
	switch {
	case p && !s.primary:
		s.primary = true
		if err := s.load(); err != nil {
			s.primary = false
			s.log.Error("primary, but the rollouts could not be loaded: not driving them yet", "err", err)
			return false
		}
		s.lastPoll = s.cfg.Now()
		s.mu.Lock()
		n := 0
		for _, e := range s.rollouts {
			if active(e.r) {
				n++
			}
		}
		s.mu.Unlock()
		s.log.Info("driving the rollouts (this control plane is the primary)", "active", n)
	case !p && s.primary:
		s.primary = false
		s.log.Info("following the primary's rollouts (this control plane is no longer the primary)")
	}
	return p
}

// pollDue reports whether pollEvery has passed since the last poll (of
// follow or pickUp), and if so counts now as the last.
func (s *Service) pollDue(now time.Time) bool {
	if now.Sub(s.lastPoll) < pollEvery {
		return false
	}
	s.lastPoll = now
	return true
}

// follow reloads the rollouts the primary changed, every pollEvery.
func (s *Service) follow(now time.Time) {
	if !s.pollDue(now) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.reloadChanged(ctx, false); err != nil {
		s.log.Warn("following the primary's rollouts", "err", err)
	}
}

// pickUp takes, every pollEvery, the rollouts created on other control
// planes and applies the requests they queued.
func (s *Service) pickUp(now time.Time) {
	if !s.pollDue(now) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.reloadChanged(ctx, true); err != nil {
		s.log.Warn("looking for rollouts created elsewhere", "err", err)
		return
	}
	reqs, err := s.cfg.Store.RolloutRequests(ctx)
	if err != nil {
		s.log.Warn("looking for rollout requests", "err", err)
		return
	}
	for _, q := range reqs {
		result := "ok"
		if _, err := s.act(q.Rollout, q.Action); err != nil {
			result = err.Error()
		}
		if err := s.cfg.Store.AnswerRolloutRequest(ctx, q.ID, result, s.cfg.Now()); err != nil {
			// Applied and saved all the same; the asker answers 202.
			s.log.Warn("answering a rollout request", "request", q.ID, "err", err)
		}
		s.log.Info("rollout "+q.Action+" asked by another control plane", "rollout", q.Rollout, "result", result)
	}
}

// reloadChanged loads the rollouts the database has and this service does
// not (newOnly), or also those whose stamp differs from the one held.
func (s *Service) reloadChanged(ctx context.Context, newOnly bool) error {
	stamps, err := s.cfg.Store.RolloutStamps(ctx)
	if err != nil {
		return err
	}
	var load []string
	s.mu.Lock()
	for id, at := range stamps {
		if e := s.byID[id]; e == nil || !newOnly && !e.r.Updated.Equal(at) {
			load = append(load, id)
		}
	}
	s.mu.Unlock()
	for _, id := range load {
		r, err := s.cfg.Store.Rollout(ctx, id)
		if err != nil {
			return err
		}
		var fresh *entry
		if newOnly {
			fresh = s.newEntry(ctx, r) // its build: the primary sends its jobs
		}
		s.mu.Lock()
		if e := s.byID[id]; e != nil {
			if !newOnly {
				e.r = r
				e.version++
				e.saved = e.version // it is the database's: nothing to save, something to broadcast
			}
		} else {
			if fresh == nil {
				fresh = &entry{r: r}
			}
			fresh.version, fresh.saved = 1, 1
			s.byID[id] = fresh
			s.rollouts = append(s.rollouts, fresh)
			slices.SortFunc(s.rollouts, func(a, b *entry) int { // newest first, as the store lists them
				return cmp.Or(b.r.Created.Compare(a.r.Created), cmp.Compare(b.r.ID, a.r.ID))
			})
			if newOnly {
				s.log.Info("rollout created by another control plane", "rollout", id, "state", r.State, "version", r.Version)
			}
		}
		s.mu.Unlock()
	}
	return nil
}

// actionOf is the rollout's method an action names; nil for none.
func actionOf(action string) func(*rollout.Rollout, time.Time) error {
	switch action {
	case "pause":
		return (*rollout.Rollout).Pause
	case "resume":
		return (*rollout.Rollout).Resume
	case "abort":
		return (*rollout.Rollout).Abort
	}
	return nil
}

// errNoRollout is act's answer for a rollout id the service does not hold.
var errNoRollout = errors.New("no such rollout")

// act applies a pause, resume or abort to rollout id and saves it before
// it returns; its errors wrap errNoRollout or rollout.ErrState.
func (s *Service) act(id, action string) (*entry, error) {
	f := actionOf(action)
	if f == nil {
		return nil, fmt.Errorf("rollout %s: %q is no action (pause, resume or abort)", id, action)
	}
	s.mu.Lock()
	e := s.byID[id]
	if e == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("rollout %q: %w", id, errNoRollout)
	}
	if err := f(e.r, s.cfg.Now()); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	e.changed(true)
	e.castNow = true // a user's action shows at once, however big the rollout
	s.mu.Unlock()
	// Saved before the answer, so what the answer says survives a crash.
	if err := s.persist(e); err != nil {
		s.log.Error("save rollout", "rollout", id, "err", err) // the engine tries again
	}
	s.poke()
	return e, nil
}

// ask queues a pause, resume or abort for the primary and waits for its
// answer (askWait at most). It checks the action against the database's
// record first, so that what the primary would refuse is refused at once.
// It returns the rollout as the database has it after the primary's
// answer, and whether the primary answered; its errors wrap errNoRollout
// or rollout.ErrState.
func (s *Service) ask(ctx context.Context, id, action string) (r *rollout.Rollout, answered bool, err error) {
	r, err = s.cfg.Store.Rollout(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, fmt.Errorf("rollout %q: %w", id, errNoRollout)
	}
	if err != nil {
		return nil, false, err
	}
	check := cloneRollout(r)
	f := actionOf(action)
	if f == nil {
		return nil, false, fmt.Errorf("rollout %s: %q is no action (pause, resume or abort)", id, action)
	}
	if err := f(check, s.cfg.Now()); err != nil {
		return nil, false, err
	}
	n, err := s.cfg.Store.RequestRollout(ctx, id, action, s.cfg.Now())
	if err != nil {
		return nil, false, err
	}
	tick := time.NewTicker(pollEvery / 10)
	defer tick.Stop()
	timeout := time.NewTimer(askWait)
	defer timeout.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-timeout.C:
			return check, false, nil // what it will be
		case <-tick.C:
		}
		answer, err := s.cfg.Store.RolloutRequestAnswer(ctx, n)
		if err != nil {
			return nil, false, err
		}
		if answer == "" {
			continue
		}
		if answer != "ok" {
			return nil, true, fmt.Errorf("%s: %w", answer, rollout.ErrState)
		}
		r, err := s.cfg.Store.Rollout(ctx, id)
		return r, true, err
	}
}
