#!/bin/sh
# A release script written for the stock notary 0.7 CLI, using only
# notary's commands, flags and aliases. $NOTARY is the client with its
# global flags, $GUN the collection; it runs in a folder holding a.txt,
# b.txt and d.crt (a delegate's certificate). Each step prints
# "step NAME ok" or "step NAME failed" (its errors go to stderr), then the
# collection as `list` shows it.
set -u

step() {
  name=$1
  shift
  if "$@" >/dev/null </dev/null; then
    echo "step $name ok"
  else
    echo "step $name failed"
  fi
}

size=$(wc -c <b.txt)
sha=$(sha256sum b.txt | cut -d' ' -f1)

step init $NOTARY init "$GUN" -p
step add-publish $NOTARY add "$GUN" v1 a.txt -p
step addhash-publish $NOTARY addhash "$GUN" v2 "$size" --sha256 "$sha" -p
step add-staged $NOTARY add "$GUN" v3 a.txt
step status $NOTARY status "$GUN"
step reset-all $NOTARY reset "$GUN" --all
step add-again $NOTARY add "$GUN" v4 a.txt
step reset-number $NOTARY reset "$GUN" -n 0
step remove-publish $NOTARY remove "$GUN" v1 -p
step delegation-add $NOTARY delegation add "$GUN" targets/releases d.crt --all-paths -p
step delegation-list $NOTARY delegation list "$GUN"
step delegation-remove-unconfirmed $NOTARY delegation remove "$GUN" targets/releases
step delegation-remove-yes $NOTARY delegation remove "$GUN" targets/releases -y -p
step verify-good $NOTARY verify "$GUN" v2 -i b.txt -q
step verify-bad $NOTARY verify "$GUN" v2 -i a.txt -q
step lookup $NOTARY lookup "$GUN" v2
step lookup-missing $NOTARY lookup "$GUN" v1
step rotate-snapshot $NOTARY key rotate "$GUN" snapshot -r
step witness $NOTARY witness "$GUN" targets -p
step key-generate $NOTARY key generate ecdsa --role targets
step key-list $NOTARY key list
step version $NOTARY version
step completion $NOTARY completion bash
echo "--- list"
$NOTARY list "$GUN"
