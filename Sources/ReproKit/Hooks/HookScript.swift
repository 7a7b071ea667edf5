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
        # the git operation: if it errors or cannot be found, one warning line, and git carries on.
        hook=$(basename "$0")
        chained="$(dirname "$0")/$hook.repro-chained"
        status=0
        if [ -x "$chained" ]; then
          "$chained" "$@"
          status=$?
        fi
        # The repro that installed this hook, or the one on PATH when that one is gone.
        repro_bin=''
        if [ -z "$repro_bin" ] || [ ! -x "$repro_bin" ]; then
          repro_bin=$(command -v repro 2>/dev/null || true)
        fi
        if [ -n "$repro_bin" ]; then
          "$repro_bin" cache refresh --hook "$hook" -- "$@" </dev/null || echo "repro: warning: cache refresh failed in the $hook hook; run 'repro cache refresh'" >&2
        else
          echo "repro: warning: repro is neither where it was installed from nor on PATH; cache entries were not refreshed after $hook (run 'repro hooks install' again)" >&2
        fi
        exit $status

        """

    /// The line the installer fills in with the absolute path of the repro installing it.
    static let binLine = "repro_bin=''"

    /// The script with `repro_bin` set to `reproPath` (single-quoted for sh).
    static func rendered(reproPath: String?) -> String {
        guard let reproPath, !reproPath.isEmpty else { return text }
        let quoted = "'" + reproPath.replacingOccurrences(of: "'", with: "'\\''") + "'"
        return text.replacingOccurrences(of: binLine, with: "repro_bin=" + quoted)
    }

    /// A hook's text with its `repro_bin` path taken out, to compare with `text`.
    static func normalized(_ installed: String) -> String {
        var lines = installed.components(separatedBy: "\n")
        if let i = lines.firstIndex(where: { $0.hasPrefix("repro_bin=") }) { lines[i] = binLine }
        return lines.joined(separator: "\n")
    }
}
