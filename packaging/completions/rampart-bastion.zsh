#compdef rampart-bastion

autoload -U is-at-least

_rampart-bastion() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_rampart-bastion_commands" \
"*::: :->rampart-bastion" \
&& ret=0
    case $state in
    (rampart-bastion)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-bastion-command-$line[1]:"
        case $line[1] in
            (join)
_arguments "${_arguments_options[@]}" : \
'--ca=[CA URL, https\://host\:port]:CA:_default' \
'--ca-fingerprint=[CA TLS certificate fingerprint (SHA256\:…), as printed by \`rampart-ca init\`]:CA_FINGERPRINT:_default' \
'--token=[The join token]:TOKEN:_default' \
'--name=[This bastion'\''s name (a host name; its host certificate'\''s principal)]:NAME:_default' \
'--dir=[Directory for the identity and config]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(check)
_arguments "${_arguments_options[@]}" : \
'--config=[The config file]:CONFIG:_files' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(serve)
_arguments "${_arguments_options[@]}" : \
'--config=[The config file]:CONFIG:_files' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
'-h[Print help]' \
'--help[Print help]' \
':shell -- The shell:(bash elvish fish powershell zsh)' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_rampart-bastion__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-bastion-help-command-$line[1]:"
        case $line[1] in
            (join)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(check)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(serve)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_rampart-bastion_commands] )) ||
_rampart-bastion_commands() {
    local commands; commands=(
'join:Join a CA with a token from \`rampart admin bastion-token\`; writes DIR/bastion.toml' \
'check:Validate a config file and the identity files it names' \
'serve:Run the SSH daemon; SIGHUP re-reads the config (targets, limits) without dropping sessions' \
'completions:Print a shell completion script (the Debian package installs the bash, zsh and fish ones)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart-bastion commands' commands "$@"
}
(( $+functions[_rampart-bastion__subcmd__check_commands] )) ||
_rampart-bastion__subcmd__check_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-bastion check commands' commands "$@"
}
(( $+functions[_rampart-bastion__subcmd__completions_commands] )) ||
_rampart-bastion__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-bastion completions commands' commands "$@"
}
(( $+functions[_rampart-bastion__subcmd__help_commands] )) ||
_rampart-bastion__subcmd__help_commands() {
    local commands; commands=(
'join:Join a CA with a token from \`rampart admin bastion-token\`; writes DIR/bastion.toml' \
'check:Validate a config file and the identity files it names' \
'serve:Run the SSH daemon; SIGHUP re-reads the config (targets, limits) without dropping sessions' \
'completions:Print a shell completion script (the Debian package installs the bash, zsh and fish ones)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart-bastion help commands' commands "$@"
}
(( $+functions[_rampart-bastion__subcmd__help__subcmd__check_commands] )) ||
_rampart-bastion__subcmd__help__subcmd__check_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-bastion help check commands' commands "$@"
}
(( $+functions[_rampart-bastion__subcmd__help__subcmd__completions_commands] )) ||
_rampart-bastion__subcmd__help__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-bastion help completions commands' commands "$@"
}
(( $+functions[_rampart-bastion__subcmd__help__subcmd__help_commands] )) ||
_rampart-bastion__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-bastion help help commands' commands "$@"
}
(( $+functions[_rampart-bastion__subcmd__help__subcmd__join_commands] )) ||
_rampart-bastion__subcmd__help__subcmd__join_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-bastion help join commands' commands "$@"
}
(( $+functions[_rampart-bastion__subcmd__help__subcmd__serve_commands] )) ||
_rampart-bastion__subcmd__help__subcmd__serve_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-bastion help serve commands' commands "$@"
}
(( $+functions[_rampart-bastion__subcmd__join_commands] )) ||
_rampart-bastion__subcmd__join_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-bastion join commands' commands "$@"
}
(( $+functions[_rampart-bastion__subcmd__serve_commands] )) ||
_rampart-bastion__subcmd__serve_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-bastion serve commands' commands "$@"
}

if [ "$funcstack[1]" = "_rampart-bastion" ]; then
    _rampart-bastion "$@"
else
    compdef _rampart-bastion rampart-bastion
fi
