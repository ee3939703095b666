package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Rollout requests: pause, resume and abort asked of a control plane that
// does not drive rollouts, queued in rollout_requests for the one that
// does (the primary), which answers each.

// RolloutRequest is one queued request.
type RolloutRequest struct {
	ID        int64
	Rollout   string // the rollout's id
	Action    string // "pause", "resume" or "abort"
	Requested time.Time
}

// keepAnswers is how long an answered request stays readable by whoever
// asked: it waits a few seconds for the answer, then gives up.
const keepAnswers = 10 * time.Minute

// RequestRollout queues action on rollout id and returns the request's id.
func (s *DB) RequestRollout(ctx context.Context, id, action string, at time.Time) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, s.d.q(`INSERT INTO rollout_requests (rollout_id, action, requested, result, answered)
		VALUES (?, ?, ?, '', 0) RETURNING id`), id, action, nanos(at)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("request %s of rollout %s: %w", action, id, err)
	}
	return n, nil
}

// RolloutRequests returns the requests not answered yet, oldest first.
func (s *DB) RolloutRequests(ctx context.Context) ([]RolloutRequest, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, rollout_id, action, requested FROM rollout_requests
		WHERE answered = 0 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("rollout requests: %w", err)
	}
	defer rows.Close()
	var list []RolloutRequest
	for rows.Next() {
		var r RolloutRequest
		var at int64
		if err := rows.Scan(&r.ID, &r.Rollout, &r.Action, &at); err != nil {
			return nil, fmt.Errorf("rollout requests: %w", err)
		}
		r.Requested = fromNanos(at)
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rollout requests: %w", err)
	}
	return list, nil
}

// AnswerRolloutRequest records the answer to request n ("ok", or why it
// was not done), and deletes the answers older than keepAnswers.
func (s *DB) AnswerRolloutRequest(ctx context.Context, n int64, result string, at time.Time) error {
	if result == "" {
		return fmt.Errorf("answer rollout request %d: an empty answer", n)
	}
	res, err := s.db.ExecContext(ctx, s.d.q(`UPDATE rollout_requests SET result = ?, answered = ? WHERE id = ?`), result, nanos(at), n)
	if err := oneRow(res, err, ErrNotFound); err != nil {
		return fmt.Errorf("answer rollout request %d: %w", n, err)
	}
	if _, err := s.db.ExecContext(ctx, s.d.q(`DELETE FROM rollout_requests WHERE answered > 0 AND answered < ?`),
		nanos(at.Add(-keepAnswers))); err != nil {
		return fmt.Errorf("delete old rollout requests: %w", err)
	}
	return nil
}

// RolloutRequestAnswer returns the answer to request n, "" while there is
// none yet; ErrNotFound when there is no such request (or its answer was
// deleted).
func (s *DB) RolloutRequestAnswer(ctx context.Context, n int64) (string, error) {
	var result string
	err := s.db.QueryRowContext(ctx, s.d.q(`SELECT result FROM rollout_requests WHERE id = ?`), n).Scan(&result)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("rollout request %d: %w", n, err)
	}
	return result, nil
}
