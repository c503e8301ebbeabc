# bash completion for passim(1)                                    -*- shell-script -*-
# Install as /usr/share/bash-completion/completions/passim

# Item hashes for `passim unpublish`, asked quietly from the daemon (nothing when it is not running).
_passim_hashes()
{
    local sock="" i
    for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
        case ${COMP_WORDS[i]} in
            --socket) sock=${COMP_WORDS[i + 1]} ;;
            --socket=*) sock=${COMP_WORDS[i]#--socket=} ;;
        esac
    done
    passim dump --json ${sock:+--socket "$sock"} 2>/dev/null |
        sed -n 's/^ *"hash": *"\([0-9a-f]\{64\}\)".*/\1/p'
}

_passim()
{
    local cur prev cmd="" i
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}

    local commands="serve publish unpublish dump status fetch verify"
    local global_opts="--json --quiet -q --verbose -v --help -h --version"

    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            serve | publish | unpublish | dump | status | fetch | verify)
                cmd=${COMP_WORDS[i]}
                break
                ;;
        esac
    done

    # values of options
    case $prev in
        --state-dir | --config-dir)
            COMPREPLY=($(compgen -d -- "$cur"))
            return
            ;;
        --config | --socket | --output | -o)
            COMPREPLY=($(compgen -f -- "$cur"))
            return
            ;;
        --interface)
            COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur"))
            return
            ;;
        --port | --bind | --max-age | --share-limit | --name | --sha256 | --sha256-url | --cdn | --timeout | --herd-wait | --domain | --dns-server)
            return
            ;;
    esac

    local opts
    case $cmd in
        "")
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "$global_opts" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$commands" -- "$cur"))
            fi
            return
            ;;
        serve)
            opts="--port --bind --localhost-only --state-dir --config --config-dir --socket --interface --ipv6 --dbus --no-dbus"
            ;;
        publish)
            opts="--max-age --share-limit --name --next-reboot --socket"
            ;;
        unpublish)
            opts="--socket"
            if [[ $cur != -* ]]; then
                COMPREPLY=($(compgen -W "$(_passim_hashes)" -- "$cur"))
                return
            fi
            ;;
        dump | status)
            opts="--socket"
            ;;
        fetch)
            opts="--from --sha256 --sha256-url --insecure-checksum-url --cdn --output -o --no-publish --max-age --share-limit --timeout --no-peers --no-cdn --no-herd --herd-wait --domain --dns-server --socket"
            ;;
        verify)
            opts="--sha256 --fix --socket"
            ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts $global_opts" -- "$cur"))
    elif [[ $cmd == publish || $cmd == verify ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}

complete -o filenames -F _passim passim

# ex: filetype=sh
