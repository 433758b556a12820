#!/usr/bin/env bash
# The import rules of the architecture (docs/architecture.md), checked by `make lint`:
# the domain stays pure, the read side does not reach into the commands, the HTTP API
# reaches the log only through the interfaces it declares, and the production binary
# links no test helper.
set -euo pipefail
GO=${GO:-go}
fail=0
deps() { $GO list -f '{{join .Imports "\n"}}' "$1"; }

bad=$(deps ./domain | grep '\.' | grep -v -e '^github.com/oklog/ulid/v2$' -e '^golang.org/x/text/' -e '^go4.org/netipx$' -e '^github.com/segmentio/encoding/json$' || true)
if [ -n "$bad" ]; then echo "domain/ must stay pure (standard library, ulid, x/text, netipx, a JSON codec), it imports:"; echo "$bad"; fail=1; fi

for pkg in ./projections ./projections/credindex ./projections/follow; do
  if deps "$pkg" | grep -qx 'github.com/keyledger/keyledger/commands'; then echo "$pkg must not import commands"; fail=1; fi
done

if deps ./httpapi | grep -qx 'github.com/keyledger/keyledger/eventstore'; then echo "httpapi must not import eventstore: declare an interface"; fail=1; fi

if $GO list -deps ./cmd/keyledger | grep -qx testing; then echo "the keyledger binary links the testing package"; fail=1; fi

exit $fail
