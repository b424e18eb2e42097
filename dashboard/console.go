package main

import "html/template"

var consolePage = template.Must(template.New("console").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stripeq</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:3rem auto;max-width:40rem;color:#30313d}a{color:#635bff}</style>
</head><body>
<h1>stripeq</h1>
<p>Redis: {{if .RedisOK}}answering{{else}}<strong>not answering</strong>{{end}} · queue <code>{{.Queue}}</code></p>
<p><a href="{{.Monitoring}}">Open the task monitor (asynqmon)</a> to see queues, executions, retries and archived tasks.</p>
</body></html>
`))
