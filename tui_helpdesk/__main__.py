from tui_helpdesk.launch import main

if __name__ == "__main__":
    main()
