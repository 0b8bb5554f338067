"""The WebQQ client: one account's session on an HTTPStream.

What it is for: the login state machine, the poll and heartbeat chains, the contact
lists, and the send queue, driven by readbacks. May import :mod:`webqq.http`,
:mod:`webqq.qq` and :mod:`webqq.statedir`. Must never open a socket (HTTPStream does),
parse bytes (:mod:`webqq.qq` does), or know of plugins, the OneBot API or the daemon.

The modules, from the one that drives to the values it hands out::

    client.py      WebQQClient: the states and their move table, the poll and heartbeat
                   chains, contact refreshes, the recovery ladder; wires the parts below
    login.py       LoginFlow: check, captcha, login, check_sig, login2; relink, resume;
                   Link, the clientid/psessionid/vfwebqq every later request repeats
    session.py     the saved session file (cookies, Link, msg_id); unusable ones set aside
    contacts.py    Contacts and ContactLoader: friends, groups, discussions
    numbers.py     NumberBook: QQ and group numbers, learnt free or looked up when needed
    receiving.py   Receiver: a poll event, de-duplicated, its sender named, in order
    sending.py     Transmitter: send_* and reply -> resolve, sign, build, send, classify
    uploads.py     Uploader: a part's pictures uploaded at its turn, the gface signature
    send_queue.py  SendQueue: order, pacing, time to live and result of OutgoingMessages
    pictures.py    ReceivedPicture, a message's pieces; Pictures: bytes on first use,
                   PictureCache under state_dir/pictures (capped in size and age)
    files.py       Files: take or refuse a friend's file, fetch an offline one
    manage.py      Manager: friend and group requests, leaving a group, our group card
    calls.py       Calls: what those parts share; NotOnline, Unavailable
    events.py      the values listeners get: StateChanged, MessageReceived, SendFinished...

A message, from the poll answer to a plugin's reply::

    WebQQClient._on_poll      a poll2 readback: parse_poll -> PollResult.events
    WebQQClient._dispatch     Receiver.receive -> MessageReceived(chat, message, text,
                              sender, group, discussion), or None for a repeat
    Receiver.deliver          [a sender's number looked up first], in arrival order
    WebQQClient._emit         every listener: the daemon (its plugins.Dispatcher runs
                              the plugins) and the OneBot API
        ... a plugin answers: the daemon calls client.send_buddy / send_group (by
        number) or client.reply(event, text) ...
    Transmitter._put          split into parts -> SendQueue.put -> an OutgoingMessage
    SendQueue._pump           its turn: in order, paced, only while ONLINE
    Transmitter._transmit     the target resolved in the contacts [session signature]
    Transmitter._send_part    msg_id + 1, Transmitting event, build_send_* ->
                              HTTPStream.add_request
    Transmitter._on_sent      SENT / FAILED / AMBIGUOUS (fate unknown: reported, not
                              resent) / NOT_SENT (certainly unprocessed: sent again)
    SendQueue._finish         status set, OutgoingMessage.done resolved, SendFinished
"""
