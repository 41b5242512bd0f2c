package domain_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain"
)

// now is the one instant the table tests decide at: time only travels on commands, so a
// fixed value keeps the expected events exact.
var now = time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)

// scenario is one given/when/then case: the events already in a stream, a command, and
// either the events the command must record (none for a repeat) or the sentinel it must be
// refused with.
type scenario[C any] struct {
	name  string
	given []domain.Event
	when  C
	then  []domain.Event
	err   error
	// field is what the message of an ErrInvalidInput refusal must name, so that the
	// HTTP detail tells the client which field to fix.
	field string
}

// runScenarios folds each case's given events with evolve, decides its command and compares
// the outcome. It also folds the given events a second time and checks that deciding left
// the first fold untouched: handlers cache folded state, so a Decide that wrote into it
// would corrupt the next command's view.
func runScenarios[S, C any](t *testing.T, evolve func(S, domain.Event) S, decide func(S, C) ([]domain.Event, error), cases []scenario[C]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if errors.Is(tc.err, domain.ErrInvalidInput) && tc.field == "" {
				t.Fatal("an invalid-input case must say which field the message names")
			}
			state, pristine := fold(evolve, tc.given), fold(evolve, tc.given)
			got, err := decide(state, tc.when)
			if !reflect.DeepEqual(state, pristine) {
				t.Errorf("decide changed the state it was given:\n got  %+v\n want %+v", state, pristine)
			}
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error = %v, want %v", err, tc.err)
				}
				if len(got) != 0 {
					t.Errorf("a refused command recorded %s", describe(got))
				}
				if tc.field != "" && !strings.Contains(err.Error(), tc.field) {
					t.Errorf("message %q does not name the field %q", err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !sameEvents(got, tc.then) {
				t.Errorf("recorded\n%s\nwant\n%s", describe(got), describe(tc.then))
			}
		})
	}
}

// fold applies events in order to the zero state.
func fold[S any](evolve func(S, domain.Event) S, events []domain.Event) S {
	var s S
	for _, e := range events {
		s = evolve(s, e)
	}
	return s
}

// sameEvents treats nil and empty as the same "records nothing".
func sameEvents(got, want []domain.Event) bool {
	if len(got) == 0 && len(want) == 0 {
		return true
	}
	return reflect.DeepEqual(got, want)
}

func describe(events []domain.Event) string {
	if len(events) == 0 {
		return "  (nothing)"
	}
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "  %s %+v\n", e.EventType(), e)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// events reads better than []domain.Event{…} in the tables.
func events(e ...domain.Event) []domain.Event { return e }
