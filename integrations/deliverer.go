package integrations

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/follow"
)

// DelivererLease is the name of the webhook deliverer's lease and checkpoint: one process of a
// deployment delivers, the others stand by.
const DelivererLease = "webhooks"

// Delivery limits, as the contract sets them.
const (
	// ReceiverTimeout bounds one delivery, from connecting to reading the answer.
	ReceiverTimeout = 10 * time.Second
	// RetryFirst is the wait after a first failed attempt; it doubles with each further one,
	// up to RetryMax.
	RetryFirst = time.Second
	RetryMax   = 5 * time.Minute
	// GiveUpAfter is how long one event may fail before the webhook is failing and stops.
	GiveUpAfter = 24 * time.Hour
	// answerLimit is how much of a receiver's answer is read: enough to reuse the connection,
	// never a receiver's whole stream.
	answerLimit = 64 << 10
	// deliveryPage is how many events a webhook reads from the log at once.
	deliveryPage = 200
)

// Clock is the deliverer's time: the retry waits and the 24 h after which a webhook is
// failing. A test passes one that jumps instead of waiting.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or less if ctx ends first (then it returns ctx's error).
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Deliverer POSTs the events each webhook asks for, in log order, at least once, under the
// follow lease DelivererLease. Every webhook has a worker of its own with its own checkpoint,
// written after each acknowledged delivery: a crash repeats at most the deliveries in flight,
// and a webhook that keeps failing holds no other back.
type Deliverer struct {
	events eventstore.Store
	leases *follow.Store
	store  *webhookStore
	client *http.Client
	clock  Clock
	log    *slog.Logger
	poll   time.Duration

	mu       sync.Mutex
	status   follow.Status
	registry eventstore.Position // how far the webhook definitions were read from the log
}

// DelivererOption configures a Deliverer.
type DelivererOption func(*Deliverer)

// WithClock sets the deliverer's clock (the system's by default).
func WithClock(c Clock) DelivererOption { return func(d *Deliverer) { d.clock = c } }

// WithDelivererLogger sets the logger (slog.Default by default).
func WithDelivererLogger(l *slog.Logger) DelivererOption { return func(d *Deliverer) { d.log = l } }

// WithPoll sets how often a caught-up worker looks for new events (250 ms by default).
func WithPoll(p time.Duration) DelivererOption { return func(d *Deliverer) { d.poll = p } }

// NewDeliverer prepares the deliverer of the webhooks w keeps; Run starts it.
func NewDeliverer(events eventstore.Store, w *Webhooks, opts ...DelivererOption) *Deliverer {
	d := &Deliverer{
		events: events, leases: w.store.leases, store: w.store, clock: realClock{}, log: slog.Default(),
		poll:   250 * time.Millisecond,
		status: follow.Status{Name: DelivererLease, State: follow.StateStarting, Holder: w.store.leases.Holder()},
	}
	for _, o := range opts {
		o(d)
	}
	d.client = &http.Client{
		Timeout: ReceiverTimeout,
		// A redirect is an answer that is not a 2xx: the receiver must be configured with the
		// URL it answers on, and a delivery never goes anywhere it was not sent.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return d
}

// Status reports the deliverer's state, as every follower does.
func (d *Deliverer) Status() follow.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

func (d *Deliverer) report(state, holder string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status.State, d.status.LeaseHolder, d.status.LastError = state, holder, ""
	if err != nil {
		d.status.LastError = err.Error()
	}
}

// Run delivers while this process holds the lease, and stands by while another does, until
// ctx ends.
func (d *Deliverer) Run(ctx context.Context) error {
	defer d.report(follow.StateStopped, "", nil)
	err := d.leases.Lead(ctx, DelivererLease, d.report, d.deliver, follow.WithLogger(d.log))
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (d *Deliverer) registryPosition() eventstore.Position {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.registry
}

// deliver runs one term: it reads the webhook definitions from the log, keeps a worker per
// active webhook, and stops them when the term ends.
func (d *Deliverer) deliver(ctx context.Context, t *follow.Term) error {
	from, err := d.leases.Position(ctx, DelivererLease)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.registry = from
	d.status.Position = from.String()
	d.mu.Unlock()

	type running struct {
		stop context.CancelFunc
		done chan struct{}
		err  error
	}
	workers := map[string]*running{}
	defer func() {
		for _, w := range workers {
			w.stop()
			<-w.done
		}
	}()
	for {
		if err := d.readDefinitions(ctx, t); err != nil {
			return err
		}
		hooks, err := d.store.list(ctx)
		if err != nil {
			return err
		}
		active := map[string]Webhook{}
		for _, h := range hooks {
			if h.Status == StatusActive {
				active[h.WebhookID] = h
			}
		}
		for id, w := range workers {
			select {
			case <-w.done:
				if errors.Is(w.err, follow.ErrLeaseLost) {
					return w.err
				}
				delete(workers, id) // failing, or failed on the store: started again below
				continue
			default:
			}
			if _, ok := active[id]; !ok {
				w.stop()
				<-w.done
				delete(workers, id)
			}
		}
		for id, h := range active {
			if _, ok := workers[id]; ok {
				continue
			}
			wctx, stop := context.WithCancel(ctx)
			w := &running{stop: stop, done: make(chan struct{})}
			workers[id] = w
			go func() {
				defer close(w.done)
				w.err = d.work(wctx, t, h)
				if w.err != nil && wctx.Err() == nil && !errors.Is(w.err, errFailing) {
					d.log.Warn("webhooks: worker stopped; it starts again", "webhook_id", h.WebhookID, "err", w.err)
				}
			}()
		}
		if err := sleep(ctx, d.poll); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error { return realClock{}.Sleep(ctx, d) }

// readDefinitions reads the log from the registry checkpoint to its head and records every
// webhook event in the table. The API records them too as it appends them; this is how a
// definition whose process died before recording it, or that another process appended, is
// found.
func (d *Deliverer) readDefinitions(ctx context.Context, t *follow.Term) error {
	from := d.registryPosition()
	start := from
	for {
		events, err := d.events.ReadAll(ctx, from, 1000)
		if err != nil {
			return err
		}
		for _, ev := range events {
			if err := d.store.apply(ctx, ev); err != nil {
				return err
			}
		}
		if len(events) == 0 {
			break
		}
		from = events[len(events)-1].Position
		d.mu.Lock()
		d.registry = from
		d.mu.Unlock()
	}
	if from == start {
		return nil
	}
	if err := d.leases.Save(ctx, t, from); err != nil {
		return err
	}
	d.mu.Lock()
	d.status.Position = from.String()
	d.mu.Unlock()
	return nil
}

// apply records a webhook event found in the log; other events are none of its business.
func (s *webhookStore) apply(ctx context.Context, ev eventstore.Event) error {
	if Category(ev.Stream) != "webhook" {
		return nil
	}
	de, err := domain.DecodeEvent(ev.Type, ev.Data)
	if err != nil {
		return follow.Fail(fmt.Errorf("integrations: webhook event %s/%d: %w", ev.Stream, ev.Version, err))
	}
	switch e := de.(type) {
	case domain.WebhookRegistered:
		return s.register(ctx, e, ev.Position)
	case domain.WebhookDeleted:
		return s.markDeleted(ctx, e.WebhookID)
	}
	// A resume is recorded by the API that appended it; read again later, it must not make
	// active a webhook that has failed since.
	return nil
}

// errFailing: the webhook failed for GiveUpAfter and stops until resumed.
var errFailing = errors.New("integrations: webhook failing")

// work delivers webhook h's events from its checkpoint on, until ctx ends, the webhook is
// failing (errFailing) or the store fails.
func (d *Deliverer) work(ctx context.Context, t *follow.Term, h Webhook) error {
	pos, err := eventstore.ParsePosition(h.Position)
	if err != nil {
		return follow.Fail(fmt.Errorf("integrations: webhook %s: checkpoint: %w", h.WebhookID, err))
	}
	filter := Filter{}
	if len(h.Types) > 0 {
		filter.Types = map[string]bool{}
		for _, typ := range h.Types {
			filter.Types[typ] = true
		}
	}
	secret := d.store.secret(h.WebhookID)
	attempts := h.Attempts
	var since time.Time
	if h.FailingSince != nil {
		since = *h.FailingSince
	}
	for {
		events, err := d.events.ReadAll(ctx, pos, deliveryPage)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			if err := sleep(ctx, d.poll); err != nil {
				return nil
			}
			continue
		}
		saved := pos
		for _, ev := range events {
			if !filter.matchesEvent(ev) {
				pos = ev.Position
				continue
			}
			for {
				err := d.post(ctx, h.URL, secret, ev)
				if ctx.Err() != nil {
					return nil
				}
				if err == nil {
					break
				}
				attempts++
				now := d.clock.Now()
				if since.IsZero() {
					since = now
				}
				failing := now.Sub(since) >= GiveUpAfter
				if err := d.store.failed(ctx, t, d.registryPosition(), h.WebhookID, attempts, err.Error(), now, since, failing); err != nil {
					return err
				}
				if failing {
					d.log.Error("webhooks: a delivery failed for 24 h; the webhook is failing and stops until resumed",
						"webhook_id", h.WebhookID, "position", ev.Position.String(), "attempts", attempts, "err", err)
					return errFailing
				}
				wait := retryWait(attempts)
				d.log.Warn("webhooks: delivery failed; retrying", "webhook_id", h.WebhookID, "position", ev.Position.String(),
					"attempt", attempts, "in", wait, "err", err)
				if err := d.clock.Sleep(ctx, wait); err != nil {
					return nil
				}
			}
			if err := d.store.delivered(ctx, t, d.registryPosition(), h.WebhookID, ev.Position); err != nil {
				return err
			}
			pos, saved, attempts, since = ev.Position, ev.Position, 0, time.Time{}
		}
		if pos != saved {
			// The page ended on events this webhook does not take: move past them.
			if err := d.store.delivered(ctx, t, d.registryPosition(), h.WebhookID, pos); err != nil {
				return err
			}
		}
	}
}

// retryWait is the wait after the n-th failed attempt: 1 s, 2 s, 4 s, … up to 5 min.
func retryWait(n int64) time.Duration {
	wait := RetryFirst
	for i := int64(1); i < n && wait < RetryMax; i++ {
		wait *= 2
	}
	return min(wait, RetryMax)
}

// post delivers one event: a 2xx answer is success, anything else an error saying what came
// back. The error never holds the URL, which may carry a receiver's credentials.
func (d *Deliverer) post(ctx context.Context, target, secret string, ev eventstore.Event) error {
	body, err := json.Marshal(NewMessage(ev, false))
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return errors.New("the webhook's URL cannot be requested")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "orderledger-webhooks/1")
	req.Header.Set("Orderledger-Event-Id", ev.ID.String())
	req.Header.Set("Orderledger-Position", ev.Position.String())
	req.Header.Set("Orderledger-Signature", Sign(secret, d.clock.Now(), body))
	resp, err := d.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("no answer: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, answerLimit))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode/100 == 3:
		return fmt.Errorf("answered %d; redirects are not followed: register the URL the receiver answers on", resp.StatusCode)
	}
	return fmt.Errorf("answered %d", resp.StatusCode)
}

// Sign is the Orderledger-Signature header of body sent at t: t=<unix seconds>,v1=<hex of
// HMAC-SHA256 of "<t>.<body>" keyed with the secret's bytes>.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}
