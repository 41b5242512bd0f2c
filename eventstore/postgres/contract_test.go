package postgres

import (
	"testing"

	"github.com/orderledger/orderledger/eventstore/storetest"
)

// TestContract runs the suite every adapter runs, each case on a database of its own.
func TestContract(t *testing.T) { storetest.Run(t, harness{}) }
