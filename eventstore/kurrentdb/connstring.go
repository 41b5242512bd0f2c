package kurrentdb

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// clientSettings are the query settings client v4.2.0 understands (lower case). The client
// itself only logs a warning for an unknown one, so a typo such as "tsl=false" would silently
// keep TLS on; we refuse it instead.
var clientSettings = map[string]bool{
	"discoveryinterval":   true,
	"gossiptimeout":       true,
	"maxdiscoverattempts": true,
	"nodepreference":      true,
	"keepaliveinterval":   true,
	"keepalivetimeout":    true,
	"tls":                 true,
	"tlscafile":           true,
	"usercertfile":        true,
	"userkeyfile":         true,
	"tlsverifycert":       true,
	"defaultdeadline":     true,
}

// parseConnString turns a connection string into the client's configuration. Client v4.2.0
// predates the kurrentdb:// schemes, so they are rewritten to the esdb:// forms they are
// synonyms of. Errors never show a password.
func parseConnString(connString string) (*esdb.Configuration, error) {
	connString = strings.TrimSpace(connString)
	shown, password := redact(connString)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("kurrentdb: connection string %q: "+format, append([]any{shown}, args...)...)
	}

	scheme, rest, ok := strings.Cut(connString, "://")
	if !ok {
		return nil, fail("no scheme; want esdb://, esdb+discover://, kurrentdb:// or kurrentdb+discover://")
	}
	switch strings.ToLower(scheme) {
	case "esdb", "kurrentdb":
		scheme = "esdb"
	case "esdb+discover", "kurrentdb+discover":
		scheme = "esdb+discover"
	default:
		return nil, fail("scheme %q is not one of esdb, esdb+discover, kurrentdb, kurrentdb+discover", scheme)
	}

	if _, query, ok := strings.Cut(rest, "?"); ok {
		settings, err := url.ParseQuery(query)
		if err != nil {
			return nil, fail("malformed settings: %v", err)
		}
		for key, values := range settings {
			name := strings.ToLower(key)
			if !clientSettings[name] {
				return nil, fail("unknown setting %q", key)
			}
			// The client ignores a defaultDeadline it cannot parse instead of refusing it.
			if name == "defaultdeadline" {
				if ms, err := strconv.Atoi(values[0]); err != nil || ms < 1 {
					return nil, fail("setting %q must be a positive number of milliseconds, not %q", key, values[0])
				}
			}
		}
	}

	cfg, err := esdb.ParseConnectionString(scheme + "://" + rest)
	if err != nil {
		msg := err.Error()
		if password != "" {
			// url.Parse errors quote the whole string, password included.
			msg = strings.ReplaceAll(msg, password, redacted)
		}
		return nil, fail("%s", msg)
	}
	return cfg, nil
}

const redacted = "xxxxx"

// redact returns connString with the password of its user info replaced, and the password.
func redact(connString string) (shown, password string) {
	_, rest, ok := strings.Cut(connString, "://")
	if !ok {
		return connString, ""
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority = rest[:i]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return connString, ""
	}
	_, password, ok = strings.Cut(authority[:at], ":")
	if !ok || password == "" {
		return connString, ""
	}
	start := len(connString) - len(rest) + at - len(password)
	return connString[:start] + redacted + connString[start+len(password):], password
}

// describeAddress names the node or the gossip seeds a configuration connects to, for errors.
func describeAddress(cfg *esdb.Configuration) string {
	if len(cfg.GossipSeeds) == 0 {
		return cfg.Address
	}
	seeds := make([]string, len(cfg.GossipSeeds))
	for i, seed := range cfg.GossipSeeds {
		seeds[i] = seed.String()
	}
	return strings.Join(seeds, ",")
}
