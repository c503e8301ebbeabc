# fish completion for passim(1). Install as /usr/share/fish/vendor_completions.d/passim.fish

set -l commands serve publish unpublish dump status fetch verify

# Item hashes for `passim unpublish`, asked quietly from the daemon (nothing when it is not running).
function __passim_hashes
    set -l tokens (commandline -opc)
    set -l sock
    for i in (seq (count $tokens))
        if test "$tokens[$i]" = --socket; and test $i -lt (count $tokens)
            set sock --socket $tokens[(math $i + 1)]
        else if string match -q -- '--socket=*' $tokens[$i]
            set sock --socket (string replace -- '--socket=' '' $tokens[$i])
        end
    end
    passim dump --json $sock 2>/dev/null | string replace -rf '^\s*"hash":\s*"([0-9a-f]{64})".*' '$1'
end

complete -c passim -f

# global
complete -c passim -l json -d 'print data as JSON'
complete -c passim -s q -l quiet -d 'print less'
complete -c passim -s v -l verbose -d 'print more, and stack traces on errors'
complete -c passim -s h -l help -d 'show help'
complete -c passim -n "not __fish_seen_subcommand_from $commands" -l version -d 'show version number'

# commands
complete -c passim -n "not __fish_seen_subcommand_from $commands" -a serve -d 'run the daemon in the foreground'
complete -c passim -n "not __fish_seen_subcommand_from $commands" -a publish -d "add a copy of FILE to the daemon's store"
complete -c passim -n "not __fish_seen_subcommand_from $commands" -a unpublish -d 'remove an item'
complete -c passim -n "not __fish_seen_subcommand_from $commands" -a dump -d 'show the daemon status and the items'
complete -c passim -n "not __fish_seen_subcommand_from $commands" -a status -d 'show the daemon status and the items'
complete -c passim -n "not __fish_seen_subcommand_from $commands" -a fetch -d 'download NAME by sha256 from a peer or a CDN'
complete -c passim -n "not __fish_seen_subcommand_from $commands" -a verify -d 'check the items in the store, or FILE'

# every command that talks to the daemon
complete -c passim -n "__fish_seen_subcommand_from serve publish unpublish dump status fetch verify" -l socket -r -F -d 'control socket of the daemon (env PASSIM_SOCKET)'

# serve
complete -c passim -n "__fish_seen_subcommand_from serve" -l port -x -d 'HTTPS port (default 27500)'
complete -c passim -n "__fish_seen_subcommand_from serve" -l bind -x -d 'address to listen on (repeatable)'
complete -c passim -n "__fish_seen_subcommand_from serve" -l localhost-only -d 'serve loopback clients only, do not advertise'
complete -c passim -n "__fish_seen_subcommand_from serve" -l state-dir -x -a '(__fish_complete_directories)' -d 'store, audit log and TLS key'
complete -c passim -n "__fish_seen_subcommand_from serve" -l config -r -F -d 'the passim.conf file to read'
complete -c passim -n "__fish_seen_subcommand_from serve" -l config-dir -x -a '(__fish_complete_directories)' -d 'dir holding passim.conf and passim.d/'
complete -c passim -n "__fish_seen_subcommand_from serve" -l interface -x -a '(path basename /sys/class/net/*)' -d 'network interface for mDNS (repeatable)'
complete -c passim -n "__fish_seen_subcommand_from serve" -l ipv6 -d 'also use IPv6 for mDNS'
complete -c passim -n "__fish_seen_subcommand_from serve" -l dbus -d 'offer org.freedesktop.Passim on the system bus'
complete -c passim -n "__fish_seen_subcommand_from serve" -l no-dbus -d 'do not use D-Bus'

# publish
complete -c passim -n "__fish_seen_subcommand_from publish" -F
complete -c passim -n "__fish_seen_subcommand_from publish" -l max-age -x -d 'seconds until the item expires (default 86400)'
complete -c passim -n "__fish_seen_subcommand_from publish" -l share-limit -x -d 'times it may be served to peers (default 5)'
complete -c passim -n "__fish_seen_subcommand_from publish" -l name -x -d 'basename to publish under'
complete -c passim -n "__fish_seen_subcommand_from publish" -l next-reboot -d 'keep it disabled until the next reboot'

# unpublish
complete -c passim -n "__fish_seen_subcommand_from unpublish" -a '(__passim_hashes)' -d 'item hash'

# fetch
complete -c passim -n "__fish_seen_subcommand_from fetch" -l sha256 -x -d 'expected sha256'
complete -c passim -n "__fish_seen_subcommand_from fetch" -l sha256-url -x -d 'https URL of a checksum file'
complete -c passim -n "__fish_seen_subcommand_from fetch" -l insecure-checksum-url -d 'accept an http checksum URL'
complete -c passim -n "__fish_seen_subcommand_from fetch" -l from -r -F -d 'fetch every file of a list (- = stdin)'
complete -c passim -n "__fish_seen_subcommand_from fetch" -l cdn -x -d 'CDN URL to fall back to (repeatable)'
complete -c passim -n "__fish_seen_subcommand_from fetch" -s o -l output -r -F -d 'where to write (- for stdout)'
complete -c passim -n "__fish_seen_subcommand_from fetch" -l no-publish -d 'do not publish the result to the local daemon'
complete -c passim -n "__fish_seen_subcommand_from fetch" -l max-age -x -d 'seconds the published copy is kept'
complete -c passim -n "__fish_seen_subcommand_from fetch" -l share-limit -x -d 'times the published copy may be served'
complete -c passim -n "__fish_seen_subcommand_from fetch" -l timeout -x -d 'peer discovery timeout in ms'
complete -c passim -n "__fish_seen_subcommand_from fetch" -l no-peers -d 'do not look for peers'
complete -c passim -n "__fish_seen_subcommand_from fetch" -l no-cdn -d 'do not fall back to a CDN'
complete -c passim -n "__fish_seen_subcommand_from fetch" -l no-herd -d 'never wait for another host already fetching it'
complete -c passim -n "__fish_seen_subcommand_from fetch" -l herd-wait -x -d 'longest wait for another host fetching it, in ms'
complete -c passim -n "__fish_seen_subcommand_from fetch" -l domain -x -d 'wide-area DNS-SD zone to look in as well (empty: off)'
complete -c passim -n "__fish_seen_subcommand_from fetch" -l dns-server -x -d 'DNS server for --domain'

# verify
complete -c passim -n "__fish_seen_subcommand_from verify" -F
complete -c passim -n "__fish_seen_subcommand_from verify" -l sha256 -x -d 'expected sha256 of FILE'
complete -c passim -n "__fish_seen_subcommand_from verify" -l fix -d 'unpublish the items whose content no longer matches'
