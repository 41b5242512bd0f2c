package bench

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// turns is how many counted turns each side of a timed measurement gets: enough that a burst
// of load from elsewhere falls on both sides, few enough that a turn outlasts its ramp-up.
const turns = 5

// turn is one go at a measured side: it does some operations and says how many, and how long
// they took.
type turn func(ctx context.Context) (ops int64, elapsed time.Duration, err error)

// rate is operations per second of a side's own time.
type rate struct {
	ops     int64
	elapsed time.Duration
}

func (r *rate) add(ops int64, elapsed time.Duration) {
	r.ops += ops
	r.elapsed += elapsed
}

func (r rate) perSecond() float64 {
	if r.elapsed <= 0 {
		return math.NaN()
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

// alternate measures subject beside baseline: a first turn of each, not counted, warms
// connections, caches and the server; then turns in the order subject, baseline, baseline,
// subject, subject, baseline… (so that a load drifting during the run falls on both alike)
// until d has passed, ending on a whole pair. It returns each side's rate.
func alternate(ctx context.Context, d time.Duration, subject, baseline turn) (float64, float64, error) {
	return alternateTurns(ctx, d, true, subject, baseline)
}

// alternateTurns is alternate, with or without the warm-up turns.
func alternateTurns(ctx context.Context, d time.Duration, warmUp bool, subject, baseline turn) (float64, float64, error) {
	sides := [2]turn{subject, baseline}
	for _, t := range sides {
		if !warmUp {
			break
		}
		if _, _, err := t(ctx); err != nil {
			return 0, 0, err
		}
	}
	var rates [2]rate
	start := time.Now()
	for pair := 0; pair == 0 || time.Since(start) < d; pair++ {
		for k := range 2 {
			side := k ^ pair%2 // subject first in even pairs, baseline first in odd ones
			ops, elapsed, err := sides[side](ctx)
			if err != nil {
				return 0, 0, err
			}
			rates[side].add(ops, elapsed)
		}
	}
	return rates[0].perSecond(), rates[1].perSecond(), nil
}

// only measures a side with no baseline for d, in turns so that it is measured as the
// alternating figures are, after an uncounted warm-up turn.
func only(ctx context.Context, d time.Duration, subject turn) (float64, error) {
	if _, _, err := subject(ctx); err != nil {
		return 0, err
	}
	var r rate
	for start := time.Now(); r.elapsed == 0 || time.Since(start) < d; {
		ops, elapsed, err := subject(ctx)
		if err != nil {
			return 0, err
		}
		r.add(ops, elapsed)
	}
	return r.perSecond(), nil
}

// crew makes a timed turn of d: clients goroutines each call op in a loop until d has passed
// (at least once each), and the turn counts the calls that succeeded over the wall time until
// the last one returned. The first error ends the turn and is its error. op's n counts the
// calls of one client across every turn, so it can name a new stream or the next version.
func crew(clients int, d time.Duration, op func(ctx context.Context, client int, n int64) error) turn {
	next := make([]int64, clients)
	return func(ctx context.Context) (int64, time.Duration, error) {
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		var calls atomic.Int64
		start := time.Now()
		deadline := start.Add(d)
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				for first := true; first || time.Now().Before(deadline); first = false {
					if ctx.Err() != nil {
						return
					}
					if err := op(ctx, c, next[c]); err != nil {
						cancel(err)
						return
					}
					next[c]++
					calls.Add(1)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		if err := context.Cause(ctx); err != nil {
			return 0, 0, err
		}
		return calls.Load(), elapsed, nil
	}
}

// passes makes a turn of one pass over the log: pass returns how many events it went through,
// which must be want, or a pass that stopped short would pass for a fast one.
func passes(want int64, what string, pass func(ctx context.Context) (int64, error)) turn {
	return func(ctx context.Context) (int64, time.Duration, error) {
		start := time.Now()
		n, err := pass(ctx)
		elapsed := time.Since(start)
		if err != nil {
			return 0, 0, err
		}
		if n != want {
			return 0, 0, errors.New("bench: " + what + " went through " + strconv.FormatInt(n, 10) + " events; the log holds " + strconv.FormatInt(want, 10))
		}
		return n, elapsed, nil
	}
}

// percentile returns the q-quantile (0 < q <= 1) of samples by the nearest-rank method.
func percentile(samples []time.Duration, q float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

func formatFloat(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
