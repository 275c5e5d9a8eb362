//! The connection's engine: frames in, the handshake advanced, records
//! opened and sealed, control messages queued. The public face is in
//! `mod.rs`.

use super::outbound::{frame_with, queue_control};
use super::{Connection, ControlMessage, State, MAX_PENDING_CONTROLS, PLAINTEXT_BACKLOG};
use crate::error::{ApiMisuse, Error};
use crate::handshake::Role;
use crate::session::{Record, RecordMode, Session, CONTROL_HEADER_LEN};

impl Connection {
    /// Marks the connection failed and passes the error on.
    pub(super) fn fail(&mut self, err: Error) -> Error {
        self.state = State::Failed;
        err
    }

    /// A sealing error: misuse (too large, closed) leaves the connection
    /// usable; a session limit or internal failure ends it.
    pub(super) fn fail_sealing(&mut self, err: Error) -> Error {
        match err {
            Error::ApiMisuse(_) => err,
            other => self.fail(other),
        }
    }

    /// Processing paused for the application to read; carry on when it has.
    pub(super) fn resume(&mut self) -> Result<(), Error> {
        if !self.has_failed()
            && self.inbound.has_unprocessed()
            && self.inbound.plaintext_len() < PLAINTEXT_BACKLOG
        {
            self.process()?;
        }
        Ok(())
    }

    /// Processes every whole frame. On an error, data decrypted before it
    /// is still handed out first; the error comes after it.
    pub(super) fn process(&mut self) -> Result<(), Error> {
        match self.process_frames() {
            Ok(()) => Ok(()),
            Err(e) => {
                self.state = State::Failed;
                if self.inbound.front_message().is_some() {
                    self.pending_error = Some(e);
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    pub(super) fn process_frames(&mut self) -> Result<(), Error> {
        while self.inbound.plaintext_len() < PLAINTEXT_BACKLOG && !self.peer_closed {
            let Some(frame) = self.inbound.next_frame()? else {
                break;
            };
            // No handshake message or record is ever empty: an empty first
            // frame is how a server at its limits turns a client away
            // (docs/wire-format.md, "Server busy").
            if !self.heard_from_peer
                && self.role == Role::Initiator
                && self.inbound.frame(&frame).is_empty()
            {
                return Err(Error::ServerBusy);
            }
            self.heard_from_peer = true;
            match &mut self.state {
                State::Handshaking(handshake) => {
                    let mut payload = Vec::new();
                    handshake.read_message(self.inbound.frame(&frame), &mut payload)?;
                    self.payloads_in.push(payload);
                    self.inbound.discard_frame(frame);
                    self.advance_handshake()?;
                }
                State::Open(session) => {
                    let mode = session.info().mode;
                    let body = self.inbound.frame_mut(&frame);
                    match mode {
                        RecordMode::Noise => {
                            let n = session.open_in_place(body)?;
                            self.inbound.keep_plaintext(frame, 0, n);
                        }
                        _ => match session.open_record_in_place(body)? {
                            Record::Data(len) => self.inbound.keep_plaintext(frame, 1, len),
                            Record::Close => {
                                self.inbound.discard_frame(frame);
                                self.peer_closed = true;
                            }
                            Record::Control(ty, len) => {
                                let start = 1 + CONTROL_HEADER_LEN;
                                let payload = body[start..start + len].to_vec();
                                self.inbound.discard_frame(frame);
                                if self.controls_in.len() == MAX_PENDING_CONTROLS {
                                    self.controls_in.pop_front();
                                    self.dropped_controls += 1;
                                }
                                self.controls_in.push_back(ControlMessage { ty, payload });
                            }
                            _ => {
                                self.inbound.discard_frame(frame);
                                queue_control(session, self.now, &mut self.rng, &mut self.tx)?;
                            }
                        },
                    }
                }
                State::Failed => return Err(ApiMisuse::StreamFailed.into()),
            }
        }
        Ok(())
    }

    /// Writes every handshake message that is ours to write, and switches
    /// to the session when the handshake has finished.
    pub(super) fn advance_handshake(&mut self) -> Result<(), Error> {
        let State::Handshaking(handshake) = &mut self.state else {
            return Ok(());
        };
        while handshake.wants_write() {
            let payload = self.payloads_out.pop_front().unwrap_or_default();
            frame_with(&mut self.tx, |out| handshake.write_message(&payload, out))?;
        }
        if handshake.is_finished() {
            let established = handshake.finish()?;
            let session = Session::new(established);
            self.info = Some(session.info().clone());
            self.state = State::Open(Box::new(session));
        }
        Ok(())
    }
}
