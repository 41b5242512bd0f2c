package kurrentdb

import (
	"strings"
	"testing"
	"time"
)

func TestParseConnStringAcceptsClientAndKurrentSchemes(t *testing.T) {
	cases := []struct {
		conn        string
		addr        string // describeAddress
		disableTLS  bool
		dnsDiscover bool
		user        string
	}{
		{conn: "esdb://localhost:2113?tls=false", addr: "localhost:2113", disableTLS: true},
		{conn: "esdb://db.example.com", addr: "db.example.com:2113"},
		{conn: "ESDB://db.example.com:1113/?tls=false", addr: "db.example.com:1113", disableTLS: true},
		{conn: "kurrentdb://localhost:2113?tls=false", addr: "localhost:2113", disableTLS: true},
		{conn: "  kurrentdb://admin:changeit@localhost  ", addr: "localhost:2113", user: "admin"},
		{conn: "esdb+discover://cluster.example.com:2113", addr: "cluster.example.com:2113", dnsDiscover: true},
		{conn: "kurrentdb+discover://cluster.example.com", addr: "cluster.example.com:2113", dnsDiscover: true},
		{conn: "esdb://node1:2113,node2:2114,node3?tls=false&nodePreference=follower", addr: "node1:2113,node2:2114,node3:2113", disableTLS: true},
		{conn: "kurrentdb://node1,node2", addr: "node1:2113,node2:2113"},
	}
	for _, c := range cases {
		cfg, err := parseConnString(c.conn)
		if err != nil {
			t.Errorf("%q: %v", c.conn, err)
			continue
		}
		if got := describeAddress(cfg); got != c.addr {
			t.Errorf("%q: address %q, want %q", c.conn, got, c.addr)
		}
		if cfg.DisableTLS != c.disableTLS || cfg.DnsDiscover != c.dnsDiscover || cfg.Username != c.user {
			t.Errorf("%q: DisableTLS %v DnsDiscover %v Username %q, want %v %v %q",
				c.conn, cfg.DisableTLS, cfg.DnsDiscover, cfg.Username, c.disableTLS, c.dnsDiscover, c.user)
		}
	}
}

func TestParseConnStringSettings(t *testing.T) {
	cfg, err := parseConnString("kurrentdb://localhost?defaultDeadline=2500&maxDiscoverAttempts=3&keepAliveInterval=15000&nodePreference=random")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DefaultDeadline == nil || *cfg.DefaultDeadline != 2500*time.Millisecond {
		t.Errorf("DefaultDeadline %v, want 2.5s", cfg.DefaultDeadline)
	}
	if cfg.MaxDiscoverAttempts != 3 || cfg.KeepAliveInterval != 15*time.Second || cfg.NodePreference != "Random" {
		t.Errorf("MaxDiscoverAttempts %d KeepAliveInterval %v NodePreference %q, want 3 15s Random",
			cfg.MaxDiscoverAttempts, cfg.KeepAliveInterval, cfg.NodePreference)
	}
}

func TestParseConnStringRefusesMalformed(t *testing.T) {
	cases := []struct {
		conn string
		want string // in the error
	}{
		{"", "no scheme"},
		{"localhost:2113", "no scheme"},
		{"postgres://localhost:5432/db", `scheme "postgres" is not one of esdb, esdb+discover, kurrentdb, kurrentdb+discover`},
		{"kurrent://localhost", `scheme "kurrent" is not one of`},
		{"esdb://", "doesn't have an host"},
		{"kurrentdb://?tls=false", "doesn't have an host"},
		{"esdb://localhost:abc", "invalid port"},
		{"esdb://node1:2113,node2:x", "wrong port format"},
		{"esdb://localhost/ledger", "unsupported URL path"},
		{"esdb://localhost?tsl=false", `unknown setting "tsl"`},
		{"esdb://localhost?tls=maybe", "must be either true or false"},
		{"esdb://localhost?nodePreference=primary", "Invalid NodePreference"},
		{"esdb://localhost?maxDiscoverAttempts=many", "must be an integer value"},
		{"esdb://localhost?defaultDeadline=soon", `setting "defaultDeadline" must be a positive number of milliseconds, not "soon"`},
		{"esdb://localhost?defaultDeadline=0", "positive number of milliseconds"},
		{"esdb://localhost?tls=false;x", "malformed settings"},
		{"esdb://:secret@localhost", "empty username"},
	}
	for _, c := range cases {
		cfg, err := parseConnString(c.conn)
		if err == nil {
			t.Errorf("%q: accepted (%+v), want an error containing %q", c.conn, cfg, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "kurrentdb: connection string ") {
			t.Errorf("%q: error %q, want it to start with \"kurrentdb: connection string\" and contain %q", c.conn, err, c.want)
		}
	}
}

func TestParseConnStringNeverShowsThePassword(t *testing.T) {
	for _, conn := range []string{
		"esdb://admin:s3cr3t-pw@localhost:abc", // url.Parse quotes the whole string
		"kurrentdb://admin:s3cr3t-pw@localhost?tsl=false",
		"esdb://admin:s3cr3t-pw@node1,node2:x",
	} {
		_, err := parseConnString(conn)
		if err == nil {
			t.Fatalf("%q: accepted", conn)
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("%q: the error shows the password: %v", conn, err)
		}
		if !strings.Contains(err.Error(), "admin:"+redacted+"@") {
			t.Errorf("%q: the error %q does not show the redacted user info", conn, err)
		}
	}
}

func TestRedact(t *testing.T) {
	cases := []struct{ in, shown, password string }{
		{"esdb://admin:changeit@host:2113?tls=true", "esdb://admin:xxxxx@host:2113?tls=true", "changeit"},
		{"esdb://admin@host", "esdb://admin@host", ""},
		{"esdb://host?x=a:b@c", "esdb://host?x=a:b@c", ""}, // an @ in the settings is not user info
		{"esdb://u:p@ss@host", "esdb://u:xxxxx@host", "p@ss"},
		{"no scheme", "no scheme", ""},
	}
	for _, c := range cases {
		shown, password := redact(c.in)
		if shown != c.shown || password != c.password {
			t.Errorf("redact(%q) = %q, %q; want %q, %q", c.in, shown, password, c.shown, c.password)
		}
	}
}
