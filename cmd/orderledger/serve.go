package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/cors"
	"github.com/spf13/cobra"

	"github.com/orderledger/orderledger/access"
	"github.com/orderledger/orderledger/audit"
	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/commands/automation"
	"github.com/orderledger/orderledger/dashboard"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/follow"
	"github.com/orderledger/orderledger/integrations"
	"github.com/orderledger/orderledger/internal/httpx"
	"github.com/orderledger/orderledger/internal/openapi"
	"github.com/orderledger/orderledger/internal/stores"
	"github.com/orderledger/orderledger/privacy"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/readapi"
)

// Roles a serve process can take; by default it takes them all.
const (
	roleWrite    = "write"    // the write routes
	roleRead     = "read"     // the read and audit routes
	roleProject  = "project"  // the projectors that build the read models
	roleAutomate = "automate" // the order-to-cash process managers
)

var allRoles = []string{roleWrite, roleRead, roleProject, roleAutomate}

type serveOptions struct {
	addr             string
	baseCurrency     string
	roles            []string
	shutdownTimeout  time.Duration
	maxAutomationLag time.Duration
	cacheBytes       int
	insecureNoAuth   bool
	corsOrigins      []string
	oidcIssuer       string
	oidcAudience     string
	oidcRoleClaim    string
	adminTokenFile   string
}

func newServeCmd(cfg *config) *cobra.Command {
	opts := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP service: write API, read API, projectors and the order-to-cash automation",
		Long: `Run the HTTP service. By default one process takes every role; --roles splits them
across processes that share the same stores, e.g. two "write,read" processes behind a load
balancer and one "project,automate" process.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), cfg, opts)
		},
	}
	cmd.Flags().StringVar(&opts.addr, "addr", envOr("ORDERLEDGER_ADDR", "127.0.0.1:8080"), "listen address (env ORDERLEDGER_ADDR)")
	cmd.Flags().StringSliceVar(&opts.roles, "roles", splitList(envOr("ORDERLEDGER_ROLES", strings.Join(allRoles, ","))),
		"roles this process takes: write, read, project, automate (env ORDERLEDGER_ROLES)")
	cmd.Flags().StringVar(&opts.baseCurrency, "base-currency", envOr("ORDERLEDGER_BASE_CURRENCY", readapi.DefaultBaseCurrency),
		"the currency reads answer in when they name none, and of customers' lifetime values (env ORDERLEDGER_BASE_CURRENCY)")
	cmd.Flags().DurationVar(&opts.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish on SIGTERM/SIGINT")
	cmd.Flags().DurationVar(&opts.maxAutomationLag, "max-automation-lag", 0,
		"refuse new orders (503 with Retry-After) while the automation is further behind than this; 0: never (needs the write and automate roles)")
	cmd.Flags().IntVar(&opts.cacheBytes, "command-cache-bytes", commands.DefaultCacheBytes,
		"bytes the write side's cache of folded streams may hold (orderledger_command_cache_bytes on /metrics)")
	cmd.Flags().BoolVar(&opts.insecureNoAuth, "insecure-no-auth", os.Getenv("ORDERLEDGER_INSECURE_NO_AUTH") == "1",
		"serve without tokens on a non-loopback address while none was ever created: anyone who reaches the port may do anything (env ORDERLEDGER_INSECURE_NO_AUTH=1)")
	cmd.Flags().StringSliceVar(&opts.corsOrigins, "cors-origin", splitList(os.Getenv("ORDERLEDGER_CORS_ORIGIN")),
		"origins (https://shop.example.com) whose pages may call the API from a browser; none by default (env ORDERLEDGER_CORS_ORIGIN, comma-separated)")
	cmd.Flags().StringVar(&opts.oidcIssuer, "oidc-issuer", os.Getenv("ORDERLEDGER_OIDC_ISSUER"),
		"also accept bearer JWTs from this OpenID Connect issuer (its URL; env ORDERLEDGER_OIDC_ISSUER)")
	cmd.Flags().StringVar(&opts.oidcAudience, "oidc-audience", os.Getenv("ORDERLEDGER_OIDC_AUDIENCE"),
		"the audience (aud) those JWTs must carry: this API's client ID at the issuer (env ORDERLEDGER_OIDC_AUDIENCE)")
	cmd.Flags().StringVar(&opts.oidcRoleClaim, "oidc-role-claim", envOr("ORDERLEDGER_OIDC_ROLE_CLAIM", "orderledger_role"),
		"the claim that names the role (a role, or a list whose first role counts); the actor is preferred_username or sub (env ORDERLEDGER_OIDC_ROLE_CLAIM)")
	cmd.Flags().StringVar(&opts.adminTokenFile, "admin-token-file", os.Getenv("ORDERLEDGER_ADMIN_TOKEN_FILE"),
		"on a first start (no token ever created), create the token \"admin\" of role admin and write its secret to this file, mode 0600 (env ORDERLEDGER_ADMIN_TOKEN_FILE)")
	return cmd
}

// service is one serve process: its stores and the parts its roles run.
type service struct {
	roles       map[string]bool
	events      eventstore.Store
	read        *projections.ReadStore
	handler     *commands.Handler
	projectors  *projections.Runner
	automation  *automation.Runner
	leases      *follow.Store             // the followers' leases and checkpoints
	broadcaster *integrations.Broadcaster // feeds GET /v1/stream (read role)
	webhooks    *integrations.Webhooks    // the webhook routes (write and read roles)
	deliverer   *integrations.Deliverer   // delivers the webhooks (automate role)
	reg         *prometheus.Registry
	log         *slog.Logger
	// maxAutomationLag, when set, is the automation lag beyond which new orders are refused.
	maxAutomationLag time.Duration
	// baseCurrency is serve --base-currency; empty means readapi's default.
	baseCurrency string
	// tokens is the token registry every request is authenticated against, followed from the log.
	tokens *access.Tokens
	// sessions are the dashboard's logins, each authenticated again by its token.
	sessions *dashboard.Sessions
	// oidc, when set, authenticates the JWTs of an OpenID Connect issuer (--oidc-issuer).
	oidc *access.OIDC
	// corsOrigins are the origins whose pages may call the API from a browser (--cors-origin).
	corsOrigins []string
	// openAllowed: open mode may hold (a loopback address, or --insecure-no-auth); it holds
	// while no token was ever created.
	openAllowed bool
}

// openService opens the stores and builds the parts the roles need. close releases them.
func openService(ctx context.Context, cfg *config, roles []string, log *slog.Logger, handlerOpts ...commands.Option) (s *service, err error) {
	s = &service{roles: map[string]bool{}, log: log}
	for _, r := range roles {
		if !slices.Contains(allRoles, r) {
			return nil, fmt.Errorf("--roles: unknown role %q; want some of %s", r, strings.Join(allRoles, ", "))
		}
		s.roles[r] = true
	}
	if len(s.roles) == 0 {
		return nil, fmt.Errorf("--roles: name at least one of %s", strings.Join(allRoles, ", "))
	}
	readDSN, err := cfg.readDSN()
	if err != nil {
		return nil, err
	}
	// A failure below returns a nil service, so close the one being built.
	built := s
	defer func() {
		if err != nil {
			built.close()
		}
	}()
	if s.events, err = stores.OpenEvents(ctx, cfg.events); err != nil {
		return nil, fmt.Errorf("open event store %s: %w", stores.Redact(cfg.events), err)
	}
	if s.events, err = cfg.private(ctx, s.events); err != nil {
		return nil, err
	}
	if s.read, err = projections.OpenReadStore(ctx, readDSN); err != nil {
		return nil, fmt.Errorf("open read store %s: %w", stores.Redact(readDSN), err)
	}
	// The automation would act on the live log from a replay's checkpoints, and projectors
	// would carry the replay on to the head of the log: only reads make sense there.
	if s.roles[roleProject] || s.roles[roleAutomate] || s.roles[roleWrite] {
		asOf, replay, err := s.read.ReplayedAsOf(ctx)
		if err != nil {
			return nil, fmt.Errorf("read store %s: %w", stores.Redact(readDSN), err)
		}
		if replay {
			return nil, fmt.Errorf("read store %s holds the read models as of %s (orderledger replay); serve it with --roles read",
				stores.Redact(readDSN), asOf.Format(time.RFC3339Nano))
		}
	}
	s.tokens = access.NewTokens(s.events, log)
	s.sessions = dashboard.NewSessions(s.tokens, time.Now)
	if err := s.tokens.Refresh(ctx); err != nil {
		return nil, err
	}
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The write routes and the automation share one handler, so their cached folds agree.
	s.handler = commands.NewHandler(s.events, append([]commands.Option{commands.WithMetrics(commands.NewMetrics(s.reg))}, handlerOpts...)...)
	if s.roles[roleAutomate] || s.roles[roleProject] || s.roles[roleRead] || s.roles[roleWrite] {
		// The write role needs them too: the webhook routes keep their signing key beside them.
		if s.leases, err = follow.Open(ctx, readDSN, follow.WithLogger(log)); err != nil {
			return nil, fmt.Errorf("open the followers' leases in %s: %w", stores.Redact(readDSN), err)
		}
	}
	if s.roles[roleProject] || s.roles[roleRead] {
		opts := []projections.Option{projections.WithLogger(log)}
		if s.roles[roleProject] {
			opts = append(opts, projections.WithRegistry(s.reg))
			s.reg.MustRegister(s.read.DocumentCacheCollector())
		} else {
			// A read-only process follows the checkpoints the projecting process writes, so
			// its ?after= waits end when the read models include the position.
			opts = append(opts, projections.WithFollowOnly())
		}
		if s.projectors, err = projections.NewRunner(s.events, s.read, append(opts, projections.WithLeases(s.leases))...); err != nil {
			return nil, err
		}
	}
	if s.roles[roleRead] {
		s.broadcaster = integrations.NewBroadcaster(s.events, integrations.WithBroadcastLogger(log))
	}
	if s.roles[roleWrite] || s.roles[roleRead] || s.roles[roleAutomate] {
		kind, _ := stores.KindOf(readDSN)
		if s.webhooks, err = integrations.OpenWebhooks(ctx, s.events, s.leases, kind == stores.Postgres); err != nil {
			return nil, err
		}
	}
	if s.roles[roleAutomate] {
		s.deliverer = integrations.NewDeliverer(s.events, s.webhooks, integrations.WithDelivererLogger(log))
	}
	if s.roles[roleAutomate] {
		s.automation = automation.New(s.handler, s.leases,
			automation.WithMetrics(automation.NewMetrics(s.reg)), automation.WithLogger(log))
	}
	return s, nil
}

func (s *service) close() {
	if s.leases != nil {
		_ = s.leases.Close()
	}
	if s.read != nil {
		_ = s.read.Close()
	}
	if s.events != nil {
		_ = s.events.Close()
	}
}

// runBackground starts the projectors and the automation; both stop when ctx ends. A runner
// that stops on a broken event keeps the process serving: /readyz reports it.
func (s *service) runBackground(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	start := func(name string, run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error(name+" stopped", "err", err)
			}
		}()
	}
	start("token registry", func(ctx context.Context) error {
		s.tokens.Follow(ctx, access.RefreshInterval)
		return nil
	})
	if s.projectors != nil {
		start("projectors", s.projectors.Run)
	}
	if s.automation != nil {
		start("automation", s.automation.Run)
	}
	if s.broadcaster != nil {
		start("stream broadcaster", s.broadcaster.Run)
	}
	if s.deliverer != nil {
		start("webhook deliverer", s.deliverer.Run)
	}
	return wg.Wait
}

func serve(ctx context.Context, cfg *config, opts *serveOptions) error {
	log := slog.Default()
	if !domain.ValidCurrency(opts.baseCurrency) {
		return fmt.Errorf("--base-currency: %q is not an active ISO 4217 currency code (EUR, USD, JPY…)", opts.baseCurrency)
	}
	s, err := openService(ctx, cfg, opts.roles, log, commands.WithCacheBytes(opts.cacheBytes))
	if err != nil {
		return err
	}
	defer s.close()
	if opts.maxAutomationLag < 0 || (opts.maxAutomationLag > 0 && (!s.roles[roleWrite] || !s.roles[roleAutomate])) {
		return fmt.Errorf("--max-automation-lag: want a positive duration, in a process with the write and automate roles")
	}
	s.maxAutomationLag = opts.maxAutomationLag
	s.baseCurrency = opts.baseCurrency
	for _, o := range opts.corsOrigins {
		if err := checkOrigin(o); err != nil {
			return fmt.Errorf("--cors-origin %q: %w", o, err)
		}
	}
	s.corsOrigins = opts.corsOrigins
	if opts.oidcIssuer != "" || opts.oidcAudience != "" {
		discover, cancel := context.WithTimeout(ctx, 30*time.Second)
		s.oidc, err = access.NewOIDC(discover, opts.oidcIssuer, opts.oidcAudience, opts.oidcRoleClaim, log)
		cancel()
		if err != nil {
			return fmt.Errorf("--oidc-issuer, --oidc-audience, --oidc-role-claim: %w", err)
		}
	}

	if opts.adminTokenFile != "" && !s.tokens.AnyCreated() {
		if err := createFirstAdminToken(ctx, s.tokens, opts.adminTokenFile, log); err != nil {
			return err
		}
	}
	listener, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.addr, err)
	}
	loopback := isLoopback(listener.Addr())
	switch {
	case s.tokens.AnyCreated() || s.oidc != nil:
		log.Info("tokens in force: every route but /healthz and /readyz needs one", "oidc_issuer", opts.oidcIssuer)
	case loopback:
		log.Warn("OPEN MODE: no token was ever created and the address is loopback, so every request may do anything; create one with: orderledger tokens create --name admin --role admin")
	case opts.insecureNoAuth:
		log.Warn("OPEN MODE on a non-loopback address (--insecure-no-auth): anyone who reaches " + listener.Addr().String() + " may do anything")
	default:
		_ = listener.Close()
		return &exitError{code: 2, err: fmt.Errorf("refusing to serve %s without tokens: no token was ever created; "+
			"create one with `orderledger tokens create --name admin --role admin`, or pass --insecure-no-auth", listener.Addr())}
	}
	s.openAllowed = loopback || opts.insecureNoAuth
	srv := &http.Server{
		Handler:           s.httpHandler(log),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      5 * time.Minute, // an audit verify of a large log takes a while
		IdleTimeout:       120 * time.Second,
	}
	if s.broadcaster != nil {
		// Streams never end on their own: a shutdown ends them rather than wait for them.
		srv.RegisterOnShutdown(s.broadcaster.Stop)
	}
	background, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	waitBackground := s.runBackground(background)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(listener) }()
	log.Info("orderledger serving", "addr", listener.Addr().String(), "events", stores.Redact(cfg.events),
		"roles", strings.Join(opts.roles, ","))

	select {
	case err := <-served:
		stopBackground()
		waitBackground()
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", opts.shutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.shutdownTimeout)
	defer cancel()
	shutdownErr := srv.Shutdown(shutdownCtx)
	stopBackground()
	waitBackground()
	if shutdownErr != nil {
		return fmt.Errorf("shutdown: %w", shutdownErr)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// createFirstAdminToken creates the token "admin" on a store that never had a token and writes
// its secret to path (0600), so that a container's first start leaves a way in. Another
// process that won the race to create it leaves nothing to do.
func createFirstAdminToken(ctx context.Context, tokens *access.Tokens, path string, log *slog.Logger) error {
	secret, err := tokens.Create(ctx, "admin", access.Admin, "serve --admin-token-file", time.Now())
	if errors.Is(err, access.ErrTokenExists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--admin-token-file: create the first admin token: %w", err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		// The token exists now and its secret is lost: say how to recover.
		return fmt.Errorf("--admin-token-file: the token admin was created but its secret could not be written (%w); "+
			"revoke it with `orderledger tokens revoke --name admin` and create another", err)
	}
	log.Warn("first start: created the token admin (role admin); its secret is in "+path, "file", path)
	return nil
}

// isLoopback reports whether addr is a loopback address (127.0.0.0/8, ::1).
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// open reports whether open mode holds now: allowed, no token ever created and no OpenID
// Connect issuer trusted. The first token created anywhere ends it within
// access.RefreshInterval.
func (s *service) open() bool { return s.openAllowed && s.oidc == nil && !s.tokens.AnyCreated() }

// httpHandler is what the process serves: the router behind the access guard, instrumented;
// with --cors-origin, CORS answers the listed origins' preflights before the guard (a
// preflight carries no token).
func (s *service) httpHandler(log *slog.Logger) http.Handler {
	router := s.router()
	guards := []func(http.Handler) http.Handler{s.guard(router).Wrap}
	if len(s.corsOrigins) > 0 {
		guards = append([]func(http.Handler) http.Handler{cors.New(cors.Options{
			AllowedOrigins: s.corsOrigins,
			AllowedMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete},
			AllowedHeaders: []string{"Authorization", "Content-Type", "Idempotency-Key", "X-Correlation-ID", "Last-Event-ID"},
			ExposedHeaders: []string{"Idempotent-Replayed", "Retry-After", "WWW-Authenticate", "Location"},
			MaxAge:         600,
		}).Handler}, guards...)
	}
	return httpx.Instrument(s.reg, router, log, guards...)
}

// checkOrigin accepts a browser origin: http or https, a host, maybe a port, nothing else.
func checkOrigin(origin string) error {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("want an origin such as https://shop.example.com (scheme, host and port only; no wildcard)")
	}
	return nil
}

// guard is the access guard of router, with the roles each route declares in the OpenAPI
// document.
func (s *service) guard(router *mux.Router) *access.Guard {
	auth := access.Authenticators{s.tokens}
	if s.oidc != nil {
		auth = append(auth, s.oidc)
	}
	return access.NewGuard(router, routePolicy(), auth, s.open).WithSessions(s.sessions, dashboard.IsPage, dashboard.LoginPath)
}

// routePolicy reads each operation's x-roles (or its "security": []) from the OpenAPI
// document: one declaration both documents and enforces who may call a route.
func routePolicy() *access.Policy {
	ops, err := openapi.Operations()
	if err != nil {
		panic(err) // the embedded document is tested to parse
	}
	routes := make([]access.Route, len(ops))
	for i, op := range ops {
		routes[i] = access.Route{Method: op.Method, Path: op.Path, Public: op.Public, Consumes: op.Consumes}
		for _, r := range op.Roles {
			routes[i].Roles = append(routes[i].Roles, access.Role(r))
		}
	}
	return access.NewPolicy(routes)
}

// router mounts every route the process's roles answer. The OpenAPI test walks the router of
// a process with every role, so a route added here and not documented (or documented and
// gone) fails a test.
func (s *service) router() *mux.Router {
	router := mux.NewRouter()
	tokens := access.NewAPI(s.tokens, time.Now)
	if s.roles[roleWrite] {
		tokens.RegisterWrites(router)
		api := commands.NewAPI(s.handler)
		if s.maxAutomationLag > 0 {
			api.LimitOrdersByLag(s.maxAutomationLag, s.automation.Lag)
		}
		api.Register(router)
		s.webhooks.RegisterWrites(router)
	}
	if s.roles[roleRead] {
		opts := []readapi.Option{readapi.WithPersonalData(access.SeesPersonalData)}
		if s.baseCurrency != "" {
			opts = append(opts, readapi.WithBaseCurrency(s.baseCurrency))
		}
		readapi.New(s.read, s.events, s.projectors, opts...).Register(router)
		audit.NewAPI(privacy.Unwrap(s.events)).Register(router)
		integrations.NewStreamAPI(s.broadcaster, integrations.WithPersonalData(access.SeesPersonalData)).Register(router)
		s.webhooks.RegisterReads(router)
		s.dashboard().Register(router)
		tokens.RegisterReads(router)
	}
	router.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet)
	router.HandleFunc("/readyz", s.ready).Methods(http.MethodGet)
	router.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg})).Methods(http.MethodGet)
	router.Handle("/v1/openapi.json", openapi.Handler()).Methods(http.MethodGet)
	return router
}

// dashboard is the web dashboard over this process's stores and followers.
func (s *service) dashboard() *dashboard.Dashboard {
	policy := routePolicy()
	src := dashboard.Sources{
		Read: s.read, Events: s.events, BaseCurrency: s.baseCurrency, Sessions: s.sessions, Open: s.open,
		Allows: func(role access.Role, method, template string) bool { return policy.Allows(method, template, role) },
	}
	if src.BaseCurrency == "" {
		src.BaseCurrency = readapi.DefaultBaseCurrency
	}
	if s.projectors != nil {
		src.Projections = s.projectors.Status
	}
	if s.automation != nil {
		src.Automation = s.automation.Status
	}
	return dashboard.New(src, s.log)
}

// storeUnreachable is what /readyz says of a store it cannot reach.
const storeUnreachable = "unreachable; the server log has the details"

// ready answers /readyz: the stores are reachable, no projector or process manager has
// stopped on a broken event, and — on a process that serves reads — the read models are not
// left behind the log with no process anywhere projecting. "roles" names each role as this
// process has it: active, standby (another process is the active one) or absent.
func (s *service) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	report := map[string]any{"auth": "tokens"}
	if s.open() {
		report["auth"] = "open"
	}
	ok := true
	// /readyz needs no credentials, so it names no host, process or address: a store's error
	// (which may name its host) goes to the log, the answer says only that it is unreachable,
	// and the lease holders (host:pid) are left out.
	head, err := s.events.Head(ctx)
	if err != nil {
		ok = false
		s.log.Warn("readyz: event store unreachable", "err", err)
		report["events"] = storeUnreachable
	} else {
		report["events"] = "ok"
	}
	if err := s.read.Ping(ctx); err != nil {
		ok = false
		s.log.Warn("readyz: read store unreachable", "err", err)
		report["read"] = storeUnreachable
	} else {
		report["read"] = "ok"
	}
	roles := map[string]string{roleWrite: roleAbsent, roleRead: roleAbsent, roleProject: roleAbsent, roleAutomate: roleAbsent}
	if s.roles[roleWrite] {
		roles[roleWrite] = follow.StateActive
	}
	if s.roles[roleRead] {
		roles[roleRead] = follow.StateActive
	}
	if s.roles[roleProject] {
		status := s.projectors.Status()
		for i := range status.Projectors {
			status.Projectors[i].LeaseHolder = ""
		}
		report["projections"] = status
		ok = ok && status.Healthy()
		roles[roleProject] = follow.StateActive
		for _, p := range status.Projectors {
			if p.State != follow.StateActive {
				roles[roleProject] = follow.StateStandby
			}
		}
	}
	if s.automation != nil {
		status := s.automation.Status()
		status.Holder, status.LeaseHolder = "", ""
		report["automation"] = status
		ok = ok && status.Err() == nil
		if s.maxAutomationLag > 0 {
			// Still ready: reads and the other writes are served; only new orders wait.
			report["orders"] = "accepted"
			if status.LagSeconds > s.maxAutomationLag.Seconds() {
				report["orders"] = "refused: the automation is behind by more than " + s.maxAutomationLag.String()
			}
		}
		roles[roleAutomate] = follow.StateStandby
		if status.State == follow.StateActive {
			roles[roleAutomate] = follow.StateActive
		}
	}
	if s.roles[roleRead] && !s.roles[roleProject] && err == nil {
		behind, projecting, checkErr := s.readModelsStranded(ctx, head)
		switch {
		case checkErr != nil:
			ok = false
			s.log.Warn("readyz: cannot tell whether a process projects", "err", checkErr)
			report["projecting"] = storeUnreachable
		default:
			report["projecting"] = projecting
			if behind && !projecting {
				ok = false
				report["reason"] = "the log holds events the read models lack, and no process is projecting"
			}
		}
	}
	report["roles"] = roles
	if s.deliverer != nil {
		// Without the holder's name: /readyz needs no credentials, so it names no host or process.
		st := s.deliverer.Status()
		report["webhooks"] = map[string]string{"name": st.Name, "state": st.State, "position": st.Position, "last_error": st.LastError}
	}
	code := http.StatusOK
	report["status"] = "ready"
	if !ok {
		code = http.StatusServiceUnavailable
		report["status"] = "not ready"
		w.Header().Set("Retry-After", httpx.RetryAfterSeconds)
	}
	httpx.WriteJSON(w, code, report)
}

// roleAbsent: this process does not take the role.
const roleAbsent = "absent"

// readModelsStranded reports whether some read model is behind head, and whether any process
// holds a projector's lease.
func (s *service) readModelsStranded(ctx context.Context, head eventstore.Position) (behind, projecting bool, err error) {
	for _, p := range s.projectors.Status().Projectors {
		pos, err := eventstore.ParsePosition(p.Position)
		if err != nil || pos.Compare(head) < 0 {
			behind = true
		}
	}
	for _, name := range projections.Names() {
		held, err := s.leases.Held(ctx, projections.LeaseName(name))
		if err != nil {
			return behind, false, err
		}
		if held {
			return behind, true, nil
		}
	}
	return behind, false, nil
}

// splitList splits a comma-separated environment value.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
