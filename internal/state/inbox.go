package state

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"casesync/engine"
)

// InboxPut persists a webhook delivery. A DeliveryID already seen in the
// same inbox is a duplicate (nothing is written and dup is true) while it
// is pending, or processed less than item.Window before item.Received
// (a negative Window: ever); an older one is a new delivery. A body is
// stored only when given (non-empty).
func (s *Store) InboxPut(ctx context.Context, item engine.InboxItem) (bool, error) {
	var body any
	if len(item.Body) > 0 {
		body = item.Body
	}
	var delivery any
	if len(item.Delivery) > 0 {
		delivery = item.Delivery
	}
	// A delivery id seen before is a duplicate while it is pending or was
	// processed within the window; after the window the row is taken
	// over by the new delivery (pending again, its own body).
	cutoff := item.Received
	if item.Window > 0 {
		cutoff = item.Received.Add(-item.Window)
	}
	if item.Window < 0 {
		cutoff = time.Time{}
	}
	// Prepared before the transaction: the writer's one connection is the
	// transaction's once it begins.
	st, err := s.prepared(ctx, inboxPutSQL)
	if err != nil {
		return false, fmt.Errorf("put delivery %s in inbox %s: %w", item.DeliveryID, item.Inbox, err)
	}
	var n int64
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.StmtContext(ctx, st).ExecContext(ctx,
			item.Inbox, item.DeliveryID, item.RecordKey, body, delivery, formatTime(item.Received), item.Attempts, formatTime(cutoff))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("put delivery %s in inbox %s: %w", item.DeliveryID, item.Inbox, err)
	}
	return n == 0, nil
}

// inboxPutSQL is InboxPut's statement, prepared once per store: parsing it
// was an eighth of the inbox's acceptance time.
const inboxPutSQL = `
			INSERT INTO inbox (inbox, delivery_id, record_key, body, delivery, received, attempts)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (inbox, delivery_id) DO UPDATE SET
				record_key = excluded.record_key, body = excluded.body, delivery = excluded.delivery,
				received = excluded.received, processed_at = NULL, attempts = 0
			WHERE inbox.processed_at IS NOT NULL AND inbox.received < ?`

// InboxPending lists an inbox's unprocessed deliveries, oldest first;
// limit <= 0 means all.
func (s *Store) InboxPending(ctx context.Context, inbox string, limit int) ([]engine.InboxItem, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT id, inbox, delivery_id, record_key, body, delivery, received, attempts FROM inbox
		WHERE inbox = ? AND processed_at IS NULL
		ORDER BY received, id LIMIT ?`, inbox, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("list inbox %s: %w", inbox, err)
	}
	defer rows.Close()
	var items []engine.InboxItem
	for rows.Next() {
		var (
			it       engine.InboxItem
			received string
		)
		if err := rows.Scan(&it.ID, &it.Inbox, &it.DeliveryID, &it.RecordKey, &it.Body, &it.Delivery, &received, &it.Attempts); err != nil {
			return nil, fmt.Errorf("list inbox %s: %w", inbox, err)
		}
		if it.Received, err = parseTime(received); err != nil {
			return nil, fmt.Errorf("list inbox %s: %w", inbox, err)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list inbox %s: %w", inbox, err)
	}
	return items, nil
}

// InboxDone marks a delivery processed and deletes its body. The row stays,
// so a redelivery is still recognised as a duplicate; secure_delete zeroes
// the body's old bytes in the file.
func (s *Store) InboxDone(ctx context.Context, id int64, at time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			UPDATE inbox SET processed_at = ?, body = NULL, delivery = NULL WHERE id = ?`, formatTime(at), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("finish inbox delivery %d: %w", id, err)
	}
	s.scheduleErase()
	return nil
}

// InboxAttempted counts a failed attempt at a delivery, which stays
// pending. engine.State has no method for this; the runner can reach it
// through an interface assertion.
func (s *Store) InboxAttempted(ctx context.Context, id int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE inbox SET attempts = attempts + 1 WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("count attempt at inbox delivery %d: %w", id, err)
	}
	return nil
}
