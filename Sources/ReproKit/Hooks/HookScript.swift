/// The hook script `repro hooks install` writes: a copy of `hooks/repro-hook` at the top of the
/// repository, embedded so an installed binary needs no source tree. `HookTests` fails if the
/// two differ. (The blank line before the closing quotes is the file's final newline.)
enum HookScript {
    static let text = """
        #!/bin/sh
        # repro-managed hook: installed by `repro hooks install` as post-commit, post-checkout,
        # post-merge and post-rewrite; `repro hooks uninstall` removes it and restores the hook it
        # replaced. It marks repro cache entries stale when their code paths changed.
        #
        # The hook it replaced (if any) was kept as <name>.repro-chained: it runs first, with the same
        # arguments and stdin, and its exit status is this hook's. repro itself never fails or blocks
        # the git operation: if it errors or is not on PATH, one warning line, and git carries on.
        hook=$(basename "$0")
        chained="$(dirname "$0")/$hook.repro-chained"
        status=0
        if [ -x "$chained" ]; then
          "$chained" "$@"
          status=$?
        fi
        if command -v repro >/dev/null 2>&1; then
          repro cache refresh --hook "$hook" -- "$@" </dev/null || echo "repro: warning: cache refresh failed in the $hook hook; run 'repro cache refresh'" >&2
        else
          echo "repro: warning: repro is not on PATH; cache entries were not refreshed after $hook" >&2
        fi
        exit $status

        """
}
