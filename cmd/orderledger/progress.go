package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressLogInterval is how often progress is logged when stderr is not a terminal.
const progressLogInterval = 5 * time.Second

// progress shows how far a long command over the log has come, on stderr: on a terminal a
// live counter with its rate (the total is unknown: the port gives positions, not a count),
// elsewhere a log line every few seconds, and at the end one line with the count and rate.
type progress struct {
	w       io.Writer
	verb    string // "verified", "exported", …
	start   time.Time
	bar     *progressbar.ProgressBar // nil when w is not a terminal
	lastLog time.Time
	done    uint64
	total   int64 // 0 while unknown
}

func newProgress(w io.Writer, verb string) *progress {
	p := &progress{w: w, verb: verb, start: time.Now()}
	p.lastLog = p.start
	if isTerminal(w) {
		p.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(verb),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// update records that done events are finished.
func (p *progress) update(done uint64) {
	p.done = done
	if p.bar != nil {
		_ = p.bar.Set64(int64(done))
		return
	}
	if now := time.Now(); now.Sub(p.lastLog) >= progressLogInterval {
		p.lastLog = now
		attrs := []any{"events", done, "events_per_second", int64(p.rate())}
		if p.total > 0 {
			attrs = append(attrs, "of", p.total)
		}
		slog.Info(p.verb, attrs...)
	}
}

// updateOf is update for work whose size may be known: total is the events to do in all, or
// -1 when unknown (as projections.Rebuild reports it). A known total turns the counter into a
// bar with an estimate of the time left.
func (p *progress) updateOf(done, total int64) {
	if total > 0 && total != p.total {
		p.total = total
		if p.bar != nil {
			p.bar.ChangeMax64(total)
		}
	}
	p.update(uint64(max(done, 0)))
}

func (p *progress) rate() float64 {
	elapsed := time.Since(p.start).Seconds()
	if elapsed <= 0 {
		return 0
	}
	return float64(p.done) / elapsed
}

// finish clears the live counter and writes the summary line.
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
	fmt.Fprintf(p.w, "%s %d events in %s (%.0f events/s)\n", p.verb, p.done, time.Since(p.start).Round(time.Millisecond), p.rate())
}
