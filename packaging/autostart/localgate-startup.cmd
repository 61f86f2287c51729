@echo off
rem localgate: start at login from the Startup folder (written by `localgate autostart enable`)
$environment
start "" $exec
