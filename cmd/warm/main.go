package main

import (
	_ "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/gorilla/mux"
	_ "github.com/google/uuid"
	_ "modernc.org/sqlite"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/spf13/cobra"
	_ "github.com/schollz/progressbar/v3"
	_ "pgregory.net/rapid"
)

func main() {}
