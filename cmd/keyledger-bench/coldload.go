package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/service"
)

// benchColdLoad: the first write, on an instance with a cold cache, to an
// organization of n events: replaying them all, and from the latest snapshot.
func benchColdLoad(ctx context.Context, svc *service.Service, n int) error {
	boot, err := svc.App().Bootstrap(ctx, commands.Bootstrap{OrganizationName: "cold", PrimaryName: "admin"})
	if err != nil {
		return err
	}
	version, at := boot.Version, time.Now().UTC()
	for i := 1; i < n; i += eventstore.MaxBatch {
		var events []domain.Event
		for j := i; j < i+eventstore.MaxBatch && j < n; j++ {
			events = append(events, domain.AccountCreated{AccountID: domain.NewAccountID(), Name: fmt.Sprintf("user-%d", j), At: at})
		}
		if version, err = svc.Store().Append(ctx, domain.AggregateOrganization, boot.OrganizationID, version, events, domain.Metadata{OrganizationID: boot.OrganizationID}); err != nil {
			return err
		}
	}
	snaps, err := eventstore.OpenSnapshots(ctx, svc.Store().JetStream(), 1)
	if err != nil {
		return err
	}
	caller := commands.Caller{OrganizationID: boot.OrganizationID, AccountID: boot.AccountID, Primary: true}
	firstWrite := func(s commands.Snapshots, name string) (time.Duration, error) {
		app := commands.New(commands.Deps{Store: svc.Store(), Snapshots: s, Pepper: benchPepper, Vault: svc.Vault()})
		began := time.Now()
		_, err := app.CreateAccount(ctx, commands.CreateAccount{Caller: caller, Name: name})
		return time.Since(began), err
	}
	replay, err := firstWrite(nil, "replayed")
	if err != nil {
		return err
	}
	// The first cold load with snapshots on replays too, and stores a snapshot.
	if _, err := firstWrite(snaps, "snapshotting"); err != nil {
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, pos, ok, err := snaps.Load(ctx, domain.AggregateOrganization, boot.OrganizationID); err == nil && ok && pos >= version {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no snapshot of the organization")
		}
	}
	fromSnapshot, err := firstWrite(snaps, "from-snapshot")
	if err != nil {
		return err
	}
	table = append(table, row{name: fmt.Sprintf("first write on a cold instance to an organization of %d events: full replay | from its snapshot (ms)", n),
		value: fmt.Sprintf("%d | %d", replay.Milliseconds(), fromSnapshot.Milliseconds())})
	fmt.Fprintf(os.Stderr, "  cold first write: replay %v, from snapshot %v\n", replay, fromSnapshot)
	return nil
}
