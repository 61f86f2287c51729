"""The desktop side of localgate: the tray (a remote control over controller.Controller), the
display and backend checks that decide between tray and headless, start at login, the icons
and the clipboard. Nothing here is imported by the request path or at daemon start-up."""
